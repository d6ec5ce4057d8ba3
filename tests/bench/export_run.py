"""The export of the benchmark's book as a searchable PDF, against OCRmyPDF writing its own.

Part of `make bench` (tests/bench/run.py): once ours has OCR'd the 60-page book, its PDF export
is started over HTTP (`POST /proofing/<slug>/export`, format pdf), followed on its status JSON
to the end, and downloaded. OCRmyPDF's run of the same book, already in the benchmark, writes
its PDF as it goes, so its whole time is the comparison (it OCRs too); the export alone is
what a user waits for once the text is proofread. The file is checked as the tests check it:
`qpdf --check`, its page count, and its size against the source's.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pikepdf

from tests.bench.measure import CpuMeter
from tests.bench.system import BenchStack, Browser

TERMINAL = {"succeeded", "failed", "partially_failed", "cancelled", "interrupted"}


def export_pdf(stack: BenchStack, browser: Browser, slug: str, out: Path, source: Path) -> dict:
    def live() -> list[int]:
        return stack.web_pids() + stack.worker_pids() + stack.redis_pids()

    with CpuMeter(live) as meter:
        sent = time.monotonic()
        answer = browser.post(f"/proofing/{slug}/export", {"format": "pdf"})
        if answer.status_code != 303:
            raise RuntimeError(f"starting the PDF export failed: HTTP {answer.status_code}")
        while True:
            status = browser.get(f"/proofing/{slug}/export/status").json()
            if status["state"] in TERMINAL and status.get("download_url"):
                break
            if status["state"] in TERMINAL - {"succeeded"} or time.monotonic() - sent > 1800:
                raise RuntimeError(f"the PDF export did not succeed: {status}")
            time.sleep(0.2)
        seconds = time.monotonic() - sent
    out.write_bytes(browser.get(status["download_url"]).content)
    check = subprocess.run(["qpdf", "--check", str(out)], capture_output=True, text=True)
    with pikepdf.open(out) as pdf:
        pages = len(pdf.pages)
    return {
        "seconds": seconds,
        "cpu_s": meter.own_cpu,
        "pages": pages,
        "megabytes": out.stat().st_size / 1e6,
        "source_megabytes": source.stat().st_size / 1e6,
        "qpdf_ok": check.returncode == 0,
    }


def markdown(figures: dict, peer_s: float | None) -> list[str]:
    ratio = f"{figures['seconds'] / peer_s:.2f}" if peer_s else "—"
    return [
        "## The book exported as a searchable PDF\n",
        "Once ours has read the book, its PDF export (the stored scans with an invisible text "
        "layer; docs/export-formats.md) runs as a job, one task per page on the same workers, "
        "then one assembly (tests/bench/export_run.py). OCRmyPDF writes its PDF while it OCRs, "
        "so its whole run is the figure beside it.\n",
        "| measure | figure |",
        "|---|---|",
        f"| ours: PDF export, start → file ready | {figures['seconds']:.1f} s "
        f"(CPU {figures['cpu_s']:.1f} s) |",
        f"| OCRmyPDF: OCR and its PDF | {f'{peer_s:.1f} s' if peer_s else 'not run'} |",
        f"| export / OCRmyPDF | {ratio} |",
        f"| pages | {figures['pages']} |",
        f"| file size, against the source PDF | {figures['megabytes']:.1f} MB / "
        f"{figures['source_megabytes']:.1f} MB |",
        f"| `qpdf --check` | {'passes' if figures['qpdf_ok'] else '**fails**'} |",
        "",
    ]
