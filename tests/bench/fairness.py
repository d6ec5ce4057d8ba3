"""Jobs sharing the workers: a small job started while a long one runs, against its solo time.

Part of `make bench` (tests/bench/run.py), on the benchmark's stack and book:

1. The small job alone: a 2-page project, batch OCR of every page, timed from the start
   request to the job's end (its solo time).
2. A long job of every page of the book on another project, then 3 s later the same small
   job again on a third project; the small one is timed the same way, with the moment its
   first page started (the job's progress record) and how far the long job had got when
   the small one ended.

A job sends only a window of its pages to the queue (app/services/jobs/window.py), so the
small job's pages queue behind a few of the long job's, not behind all of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.job_tracking import progress_key
from tests.bench.system import BenchStack, Browser

TERMINAL = {"succeeded", "failed", "partially_failed", "cancelled", "interrupted"}
SMALL_PAGES = 2
DELAY_S = 3.0


@dataclass
class SmallJob:
    total_s: float
    first_started_s: float | None


def upload_ready(browser: Browser, book_path, slug: str, pages: int | None = None) -> None:
    """A project of the book (without OCR), waited for until its pages are ready."""
    with book_path.open("rb") as fh:
        answer = browser.post(
            "/proofing/create-project",
            {"title": slug, "slug": slug, "language": "eng"},
            files={"source": (book_path.name, fh, "application/pdf")},
        )
    if answer.status_code != 302:
        raise RuntimeError(f"upload of {slug} failed: HTTP {answer.status_code}")
    deadline = time.monotonic() + 900
    while browser.get(f"/proofing/{slug}/split-status").json()["status"] != "ready":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the split of {slug} did not end")
        time.sleep(0.2)


def start(browser: Browser, slug: str) -> float:
    sent = time.monotonic()
    answer = browser.post(f"/proofing/{slug}/batch-ocr", {"engine": "tesseract", "pages": "all"})
    if answer.status_code != 303:
        raise RuntimeError(f"starting OCR of {slug} failed: HTTP {answer.status_code}")
    return sent


def status(browser: Browser, slug: str) -> dict:
    return browser.get(f"/proofing/{slug}/batch-ocr/status").json()


def follow_small(stack: BenchStack, browser: Browser, slug: str, sent: float) -> SmallJob:
    client = stack.redis.client()
    first_started = None
    while True:
        now = status(browser, slug)
        if first_started is None and now.get("task_id"):
            raw = client.hget(progress_key(now["task_id"]), "first_started")
            if raw:
                first_started = float(raw) - (time.time() - (time.monotonic() - sent))
        if now["state"] in TERMINAL:
            if (now["state"], now["done"]) != ("succeeded", SMALL_PAGES):
                raise RuntimeError(f"the small job did not succeed: {now}")
            return SmallJob(time.monotonic() - sent, first_started)
        time.sleep(0.1)


def measure(stack: BenchStack, browser: Browser, book_path, small_path, pages: int, progress):
    """The small job's solo time, then its time beside a long job of `pages` pages."""
    upload_ready(browser, small_path, "fair-small-solo")
    upload_ready(browser, small_path, "fair-small")
    upload_ready(browser, book_path, "fair-long")
    progress("fairness: the small job alone")
    solo = follow_small(stack, browser, "fair-small-solo", start(browser, "fair-small-solo"))
    progress(f"fairness: small job alone {solo.total_s:.1f} s; now beside a {pages}-page job")
    long_sent = start(browser, "fair-long")
    time.sleep(DELAY_S)
    beside = follow_small(stack, browser, "fair-small", start(browser, "fair-small"))
    long_done = status(browser, "fair-long")["done"]
    progress(
        f"fairness: small job beside the long one {beside.total_s:.1f} s "
        f"(first page began {beside.first_started_s or 0:.1f} s after its start); "
        f"the long job had {long_done} of {pages} pages done"
    )
    while status(browser, "fair-long")["state"] not in TERMINAL:
        time.sleep(0.5)
    return {
        "pages_long": pages,
        "small_pages": SMALL_PAGES,
        "delay_s": DELAY_S,
        "solo_s": solo.total_s,
        "beside_s": beside.total_s,
        "first_started_s": beside.first_started_s,
        "long_done_then": long_done,
        "long_total_s": time.monotonic() - long_sent,
    }


def markdown(figures: dict) -> list[str]:
    ratio = figures["beside_s"] / figures["solo_s"]
    first = figures["first_started_s"]
    return [
        "## Jobs sharing the workers\n",
        f"A {figures['small_pages']}-page job started {figures['delay_s']:.0f} s after a "
        f"{figures['pages_long']}-page job of another project (tests/bench/fairness.py). Each "
        "job keeps only a window of its pages in the queue, about twice the worker processes, "
        "topped up as its pages finish; so the small job's pages wait behind a few of the long "
        "job's, not all of them. Before windows (one FIFO queue holding every page message) "
        "the same case took 65 s on a 90-page job.\n",
        "| measure | figure |",
        "|---|---|",
        f"| small job alone, start → end | {figures['solo_s']:.1f} s |",
        f"| small job beside the long one, start → end | {figures['beside_s']:.1f} s "
        f"({ratio:.2f} × alone) |",
        "| its first page began after its start | "
        + (f"{first:.1f} s" if first is not None else "—")
        + " |",
        f"| pages of the long job done by then | {figures['long_done_then']} of "
        f"{figures['pages_long']} |",
        f"| the long job, start → end | {figures['long_total_s']:.1f} s |",
        "",
        "Why a window rather than per-task priorities on the Redis transport: Redis "
        'priorities are a handful of separate lists polled in order, so "shortest remaining '
        "job first\" would need a priority per job that changes as it runs, and a long job's "
        "messages already in the queue keep the priority they were sent with. A window "
        "needs no priorities, keeps a running job's messages to a few (the Redis memory of a "
        "2000-page job is some 5 kB: docs/scaling.md), and a job cancelled or interrupted has "
        "almost nothing in the broker to drain. Interactive work (the split of an upload, "
        "one page OCR'd again from the editor) has a queue of its own, `interactive`, which "
        "every worker polls first (celeryconfig.py), so it never waits behind batch pages; a "
        "queue rather than a priority because `-Q` can then give it its own workers.",
        "",
    ]
