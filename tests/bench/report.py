"""The benchmark's figures turned into a terminal table and docs/performance.md.

Every figure in the document comes from the results of a run (the dict `run.py` saves as
JSON); nothing here is typed by hand except the words around them.
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from tests.bench import books_run, export_run, fairness
from tests.bench.measure import RssSampler
from tests.bench.system import BookRun, WorkerLog
from tests.support import ROOT

#: The issue's targets: ours / peer, ours / floor, start answer, poll ratio, worker RSS.
PEER_RATIO = 0.9
FLOOR_RATIO = 1.10
START_SECONDS = 1.0
#: "Costs the same": the large job's median poll within this factor of the small job's.
POLL_RATIO = 1.2
WORKER_RSS_MB = 400
#: Above this share of the CPU used by others during a phase, the run is called shared.
SHARED_MACHINE = 0.05


# -- collecting --------------------------------------------------------------------------


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except OSError:
        return "not installed"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    return 0.0


def _commit() -> str:
    git = ["git", "--no-optional-locks", "-C", str(ROOT)]
    head = _first_line([*git, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return f"{head} (with uncommitted changes)" if dirty else head


def machine(args: Any, pages: int, cores: int) -> dict[str, Any]:
    ocrmypdf = ROOT / ".venv" / "bin" / "ocrmypdf"
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m tests.bench.run " + " ".join(sys.argv[1:]),
        "quick": bool(args.quick),
        "pages": pages,
        "cores": cores,
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "tesseract": _first_line(["tesseract", "--version"]),
        "ocrmypdf": _first_line([str(ocrmypdf) if ocrmypdf.exists() else "ocrmypdf", "--version"]),
        "pypdfium2": version("pypdfium2"),
        "pdftoppm": _first_line(["pdftoppm", "-v"]),
        "python": platform.python_version(),
        "commit": _commit(),
        "load_average_at_start": " ".join(load),
    }


def composition(pages: list[tuple[str, int]]) -> str:
    counts = Counter(name for name, _ in pages)
    return ", ".join(f"{name} ×{count}" for name, count in counts.items()) + " pages"


def ours_figures(run: BookRun, log: WorkerLog, share: Any) -> dict[str, Any]:
    """The job's timeline (client, Redis, database and worker log), and the OCR figures."""
    events = {name: at - run.epoch0 for name, at in log.events.items()}
    marks = [
        ("upload request (store the PDF, count its pages, enqueue the split)", run.upload_answered),
        ("split: render every page (worker)", events.get("split done")),
        ("the client sees the split is ready (poll every 0.2 s)", run.split_ready_seen),
        ("start request (POST batch-ocr)", run.start_answered),
        ("dispatch: until the first page task starts", run.first_page_started),
        ("OCR of every page (first page started to job ended)", run.job_finished),
        ("the client sees the end (poll every 0.2 s)", run.end_seen),
    ]
    timeline, before = [], 0.0
    for label, at in marks:
        if at is None:
            continue
        timeline.append([label, max(0.0, at - before)])
        before = max(before, at)
    recognition = list(log.recognition.values())
    ocr_phase = (
        run.job_finished - run.first_page_started
        if run.job_finished is not None and run.first_page_started is not None
        else None
    )
    return {
        "total_s": run.total,
        "first_text_s": run.first_text_seen,
        "server_total_s": run.job_finished,
        "state": run.final_status["state"],
        "done": run.final_status["done"],
        "failed": run.final_status["failed"],
        "pages": run.pages,
        "cpu_s": share.own_cpu,
        "timeline": timeline,
        "split_s": (events["split done"] - events.get("split received", run.upload_answered))
        if "split done" in events
        else None,
        "ocr_phase_s": ocr_phase,
        "recognition_page_s": log.recognition,
        "recognition_sum_s": sum(recognition),
        "tasks": {
            name: {"count": len(times), "sum_s": sum(times)}
            for name, times in log.task_seconds.items()
        },
        "mean_running": run.mean_running,
        "polls": len(run.polls),
        "redis": {
            "job_keys": run.redis_job_keys,
            "celery_keys": run.redis_celery_keys,
            "ocr_queue_length": run.redis_queue_length,
            "used_memory_delta_mid": run.redis_used_delta_mid,
            "used_memory_delta_peak": run.redis_used_delta_peak,
        },
    }


def memory_figures(sampler: RssSampler) -> dict[str, Any]:
    def rows(group: str) -> list[dict[str, Any]]:
        return [
            {
                "pid": p.pid,
                "name": p.name,
                "peak_kib": p.peak_kib,
                "phase_peaks_kib": p.phase_peaks_kib,
            }
            for p in sampler.peaks(group)
        ]

    return {
        "samples": sampler.samples,
        "group_peak_kib": dict(sampler.group_peaks),
        "web": rows("web"),
        "worker": rows("worker"),
        "tesseract_peak_kib": max((p.peak_kib for p in sampler.peaks("tesseract")), default=0),
        "tesseract_processes": len(sampler.peaks("tesseract")),
        "redis_peak_kib": max((p.peak_kib for p in sampler.peaks("redis")), default=0),
    }


# -- judging -----------------------------------------------------------------------------


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**not met**")


def _poll_sizes(results: dict) -> tuple[str, str]:
    sizes = sorted((k for k, v in results["starts"].items() if v["poll_seconds"]), key=int)
    return sizes[0], sizes[-1]


def targets(results: dict) -> list[tuple[str, str, bool | None]]:
    ours = results["ours"]["total_s"]
    floor = results["floor"]["total_s"]
    peer = results["peer"]["total_s"] if results.get("peer") else None
    quality = results["quality"]
    starts = results["starts"]
    rows: list[tuple[str, str, bool | None]] = []
    if peer:
        rows.append(
            (
                f"ours ≤ {PEER_RATIO} × peer (OCRmyPDF)",
                f"ours / peer = {ours / peer:.2f} ({ours:.1f} s / {peer:.1f} s); "
                f"CPU time {results['ours']['cpu_s'] / results['peer']['cpu_s']:.2f}",
                ours / peer <= PEER_RATIO,
            )
        )
    else:
        rows.append((f"ours ≤ {PEER_RATIO} × peer (OCRmyPDF)", "--skip-peer", None))
    rows.append(
        (
            f"ours ≤ {FLOOR_RATIO:.2f} × floor",
            f"ours / floor = {ours / floor:.2f} ({ours:.1f} s / {floor:.1f} s); "
            f"CPU time {results['ours']['cpu_s'] / results['floor']['cpu_s']:.2f}",
            ours / floor <= FLOOR_RATIO,
        )
    )
    rows.append(
        (
            "CER no worse than the `tesseract` command (linn.pdf)",
            f"ours {quality['ours']:.2%}, tesseract command {quality['tesseract']:.2%}",
            quality["ours"] <= quality["tesseract"] + 1e-12,
        )
    )
    if "2000" in starts:
        posts = starts["2000"]["post_seconds"]
        typical = statistics.median(posts)
        rows.append(
            (
                f"a 2000-page start answers in under {START_SECONDS:.0f} s",
                f"median of {len(posts)}: {typical * 1000:.0f} ms "
                f"(slowest {max(posts) * 1000:.0f} ms)",
                typical < START_SECONDS,
            )
        )
    else:
        rows.append((f"a 2000-page start answers in under {START_SECONDS:.0f} s", "--quick", None))
    small, large = _poll_sizes(results)
    m_small = statistics.median(starts[small]["poll_seconds"]) * 1000
    m_large = statistics.median(starts[large]["poll_seconds"]) * 1000
    rows.append(
        (
            f"a status poll costs the same for {small} and {large} pages "
            f"(median within {POLL_RATIO}×)",
            f"median {m_small:.1f} ms vs {m_large:.1f} ms ({m_large / m_small:.2f}×)",
            m_large <= POLL_RATIO * m_small,
        )
    )
    workers = results["memory"]["worker"]
    worker = max((p["peak_kib"] for p in workers), default=0) / 1024
    by_phase = {
        phase: max((p.get("phase_peaks_kib", {}).get(phase, 0) for p in workers), default=0)
        for phase in ("split", "OCR")
    }
    long_book = results.get("memory_in_page_count")
    long_peak = long_book["peak_kib"][-1] / 1024 if long_book else 0
    rows.append(
        (
            f"worker RSS under {WORKER_RSS_MB} MB, flat in the page count",
            f"largest Celery process {worker:.0f} MB (largest during the split "
            f"{by_phase['split'] / 1024:.0f} MB, during OCR {by_phase['OCR'] / 1024:.0f} MB)"
            + (
                f"; one process rendering {long_book['pages']} pages: peak {long_peak:.0f} MB, "
                f"resident {_flatness(long_book)}"
                if long_book
                else ""
            ),
            max(worker, long_peak) < WORKER_RSS_MB,
        )
    )
    return rows


def _flatness(figures: dict) -> str:
    """Resident memory after the first tenth of the pages, and after all of them."""
    rss = figures["rss_kib"]
    tenth = max(1, len(rss) // 10)
    first, last = rss[tenth - 1] / 1024, rss[-1] / 1024
    return f"{first:.0f} MB after {tenth} pages, {last:.0f} MB after {len(rss)}"


def memory_in_page_count_section(figures: dict) -> list[str]:
    rss, peak = figures["rss_kib"], figures["peak_kib"]
    marks = sorted({n for n in (1, 10, 60, 100, 250, len(rss)) if n <= len(rss)})
    rows = [(str(n), _mb(rss[n - 1]), _mb(peak[n - 1])) for n in marks]
    width_in, height_in = figures["heaviest_size_in"]
    scans = ", ".join(f"{w}×{h} at {bits} bits/pixel" for w, h, bits in figures["heaviest_scans"])
    return [
        "## Memory in the page count\n",
        f"One fresh process renders {figures['pages']} pages one after another with "
        "app/rendering.py, exactly as a split task renders its pages (the book's pages over "
        f"and over); its VmRSS and peak (VmHWM) after each page. It starts at "
        f"{_mb(figures['baseline_kib'])}.\n",
        _md_table(["pages rendered", "resident (VmRSS)", "peak so far (VmHWM)"], rows),
        f"\nThe page that raised the peak most is page {figures['heaviest_page']} "
        f"({figures['heaviest_source']}, a {width_in:.0f}×{height_in:.0f} inch page rendered "
        f"at {figures['heaviest_dpi']:.0f} DPI; its scan: {scans}). Such a page goes to "
        "pdftoppm, which scales the scan while decoding it, instead of PDFium, which decodes "
        "it whole first (app/rendering.py, PDFIUM_MAX_SCAN_BYTES). On that page alone, in a "
        f"fresh process, pdftoppm peaks at {_mb(figures['pdftoppm_peak_kib'])} and a Python "
        f"process rendering it with PDFium at {_mb(figures.get('pdfium_peak_kib', 0))}.\n",
    ]


# -- writing -----------------------------------------------------------------------------


def _s(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.1f} s"


def _mb(kib: float) -> str:
    return f"{kib / 1024:.0f} MB"


def main_rows(results: dict) -> list[tuple[str, str, str]]:
    """(measure, wall time, CPU seconds) of the three contenders."""
    floor, ours, peer = results["floor"], results["ours"], results.get("peer")
    n = results["meta"]["cores"]
    rows = [
        (
            f"floor: rasterize (app.rendering, {n} processes)",
            _s(floor["raster_s"]),
            _s(floor.get("raster_cpu_s")),
        ),
        (
            f"floor: `tesseract` command, {n} pages at a time",
            _s(floor["ocr_s"]),
            _s(floor.get("ocr_cpu_s")),
        ),
        ("floor: total", _s(floor["total_s"]), _s(floor["cpu_s"])),
    ]
    if peer:
        rows.append((f"peer: `ocrmypdf --jobs {n}`", _s(peer["total_s"]), _s(peer["cpu_s"])))
    rows += [
        ("ours: upload → job ended", _s(ours["total_s"]), _s(ours["cpu_s"])),
        ("ours: upload → first page's text", _s(ours["first_text_s"]), ""),
    ]
    if peer:
        rows.append(
            (
                "ours / peer",
                f"{ours['total_s'] / peer['total_s']:.2f}",
                f"{ours['cpu_s'] / peer['cpu_s']:.2f}",
            )
        )
    rows.append(
        (
            "ours / floor",
            f"{ours['total_s'] / floor['total_s']:.2f}",
            f"{ours['cpu_s'] / floor['cpu_s']:.2f}",
        )
    )
    return rows


def _slot_tables(results: dict) -> list[str]:
    """Slot-seconds (wall time × cores) of the split and the OCR, split into what filled them."""
    ours, floor = results["ours"], results["floor"]
    n = results["meta"]["cores"]
    tasks = ours.get("tasks", {})
    parts = []
    ocr_phase = ours["ocr_phase_s"]
    ocr_tasks = tasks.get("ocr_page", {}).get("sum_s")
    if ocr_phase and ocr_tasks:
        slots = ocr_phase * n
        tess = ours["recognition_sum_s"]
        floor_slots = floor["ocr_s"] * n
        floor_tess = sum(floor["ocr_page_s"].values())
        parts.append(f"\nWhat filled the OCR's slot-seconds (wall time × {n} worker processes):\n")
        parts.append(
            _md_table(
                ["", "ours", "share", "floor", "share"],
                [
                    (
                        "Tesseract (ours: reading the image, recognition, words; floor: the "
                        "command, with its start)",
                        f"{tess:.1f} s",
                        f"{tess / slots:.0%}",
                        f"{floor_tess:.1f} s",
                        f"{floor_tess / floor_slots:.0%}",
                    ),
                    (
                        "the page task around Tesseract (database, Redis, word boxes)",
                        f"{ocr_tasks - tess:.1f} s",
                        f"{(ocr_tasks - tess) / slots:.0%}",
                        "–",
                        "",
                    ),
                    (
                        "idle: between tasks, and the tail where fewer pages than slots remain",
                        f"{slots - ocr_tasks:.1f} s",
                        f"{(slots - ocr_tasks) / slots:.0%}",
                        f"{floor_slots - floor_tess:.1f} s",
                        f"{(floor_slots - floor_tess) / floor_slots:.0%}",
                    ),
                    ("**total**", f"{slots:.1f} s", "100%", f"{floor_slots:.1f} s", "100%"),
                ],
            )
        )
    split_tasks = sum(
        tasks.get(name, {}).get("sum_s", 0.0) for name in ("split_source", "render_pages")
    )
    if ours.get("split_s") and split_tasks:
        count = sum(
            tasks.get(name, {}).get("count", 0) for name in ("split_source", "render_pages")
        )
        parts.append(
            f"\nThe split ran as {count} task(s) taking {split_tasks:.1f} s together in "
            f"{ours['split_s']:.1f} s of wall time: {split_tasks / (ours['split_s'] * n):.0%} "
            f"of the {n} worker processes' time (the floor rasterized the same pages in "
            f"{floor['raster_s']:.1f} s, {sum(floor['raster_page_s'].values()):.1f} s of "
            "rendering in all).\n"
        )
    return parts


def _md_table(header: list[str], rows: list[list[str]] | list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def table(results: dict) -> str:
    """The summary printed at the end of a run."""
    rows = [(m, w, c) for m, w, c in main_rows(results)]
    quality = results["quality"]
    rows.append(
        (
            "CER linn.pdf: ours / tesseract / peer",
            f"{quality['ours']:.2%} / {quality['tesseract']:.2%} / "
            + (f"{quality['peer']:.2%}" if quality["peer"] is not None else "–"),
            "",
        )
    )
    memory = results["memory"]
    rows.append(
        (
            "peak RSS: web app (all processes) / largest worker process",
            f"{_mb(memory['group_peak_kib'].get('web', 0))} / "
            f"{_mb(max((p['peak_kib'] for p in memory['worker']), default=0))}",
            "",
        )
    )
    for size, latency in results["starts"].items():
        rows.append(
            (
                f"POST batch-ocr, {size} pages (median of {len(latency['post_seconds'])})",
                f"{statistics.median(latency['post_seconds']) * 1000:.0f} ms",
                "",
            )
        )
        if latency["poll_seconds"]:
            rows.append(
                (
                    f"status poll, {size} pages (median of {len(latency['poll_seconds'])})",
                    f"{statistics.median(latency['poll_seconds']) * 1000:.1f} ms",
                    "",
                )
            )
    width = max(len(r[0]) for r in rows)
    out = [f"{'measure':<{width}}  {'value':>22}  {'CPU':>9}"]
    out += [f"{m:<{width}}  {w:>22}  {c:>9}" for m, w, c in rows]
    out.append("")
    out += [
        f"target: {name}: {measured}: {_verdict(ok)}" for name, measured, ok in targets(results)
    ]
    return "\n".join(out)


def markdown(results: dict) -> str:
    meta, ours, floor = results["meta"], results["ours"], results["floor"]
    n = meta["cores"]
    phases = results["phases"]
    busiest = max(phases.items(), key=lambda kv: kv[1]["others_share"])
    shared = busiest[1]["others_share"] > SHARED_MACHINE
    parts = [HEADER]

    parts.append("## The machine and the run\n")
    parts.append(
        _md_table(
            ["", ""],
            [
                ("date", meta["date"]),
                ("command", f"`{meta['command'].strip()}`"),
                ("cores (nproc)", n),
                ("CPU", meta["cpu_model"]),
                ("memory", f"{meta['memory_gib']:.1f} GiB"),
                ("Tesseract", meta["tesseract"]),
                ("OCRmyPDF", meta["ocrmypdf"]),
                ("pypdfium2 / pdftoppm", f"{meta['pypdfium2']} / {meta['pdftoppm']}"),
                ("Python", meta["python"]),
                ("code", f"commit {meta['commit']}"),
                (
                    "book",
                    f"{results['book']['pages']} pages ({results['book']['composition']}), "
                    f"{results['book']['megabytes']:.1f} MB",
                ),
                ("load average at start", meta["load_average_at_start"]),
            ],
        )
    )
    parts.append("")
    if shared:
        parts.append(
            f"**Measured while the machine was shared.** Other processes used up to "
            f"{busiest[1]['others_share']:.0%} of the machine's CPU during one phase "
            f"({busiest[0]}); the share per phase is in the last table. Absolute times are "
            "therefore pessimistic. Wall-time ratios compare phases of the same run, but the "
            "others' load comes and goes within a run too, so they are only as fair as that "
            "load was even (compare the shares per phase). The CPU seconds each contender "
            "used depend much less on the others' load: the CPU ratios are the steadier "
            "comparison of the work each one does, the wall ratios the one the targets "
            "name.\n"
        )
    else:
        parts.append(
            f"The machine was otherwise quiet: other processes used at most "
            f"{busiest[1]['others_share']:.0%} of its CPU during any phase.\n"
        )

    parts.append("## Results\n")
    parts.append(_md_table(["measure", "wall time", "CPU time"], main_rows(results)))
    parts.append(
        "\nCPU time is the CPU seconds of every process of the contender (for ours: gunicorn, "
        "the Celery worker, redis-server and the Tesseract processes), not of the machine.\n"
    )
    rounds = results.get("rounds", [])
    if len(rounds) > 1:
        parts.append(
            f"Floor, ours and peer were measured {len(rounds)} times, alternating; the table "
            "above shows each one's fastest round. Every round:\n"
        )
        parts.append(
            _md_table(
                ["round", "floor", "peer", "ours", "ours / peer", "ours / floor"],
                [
                    (
                        r["floor"]["round"],
                        _s(r["floor"]["total_s"]),
                        _s(r["peer"]["total_s"]) if r["peer"] else "–",
                        _s(r["ours"]["total_s"]),
                        f"{r['ours']['total_s'] / r['peer']['total_s']:.2f}" if r["peer"] else "–",
                        f"{r['ours']['total_s'] / r['floor']['total_s']:.2f}",
                    )
                    for r in rounds
                ],
            )
        )
        parts.append("")

    parts.append("## Targets (from the issue)\n")
    parts.append(
        _md_table(
            ["target", "measured", "verdict"],
            [(t, m, _verdict(ok)) for t, m, ok in targets(results)],
        )
    )
    parts.append("")

    parts.append("## Where the time goes in ours\n")
    total = ours["total_s"]
    parts.append(
        _md_table(
            ["step", "seconds", "share"],
            [(label, f"{sec:.2f}", f"{sec / total:.0%}") for label, sec in ours["timeline"]]
            + [("**upload → job ended**", f"{total:.2f}", "100%")],
        )
    )
    floor_sum = sum(floor["ocr_page_s"].values())
    floor_mean = floor_sum / max(1, len(floor["ocr_page_s"]))
    rec = ours["recognition_page_s"]
    rec_mean = ours["recognition_sum_s"] / max(1, len(rec))
    ocr_phase = ours["ocr_phase_s"]
    rows = [
        (
            "rendering the pages",
            _s(ours["split_s"]) + " (split task received → split done)",
            _s(floor["raster_s"]),
        ),
        ("OCR of every page", _s(ocr_phase), _s(floor["ocr_s"])),
        (
            "Tesseract time per page, mean",
            f"{rec_mean:.2f} s (text and word boxes, Tesseract kept loaded)",
            f"{floor_mean:.2f} s (text)",
        ),
        ("Tesseract time, all pages", _s(ours["recognition_sum_s"]), _s(floor_sum)),
    ]
    if ocr_phase:
        rows.append(
            (
                f"busy share of the {n} OCR slots during OCR",
                f"{ours['recognition_sum_s'] / (ocr_phase * n):.0%}",
                f"{floor_sum / (floor['ocr_s'] * n):.0%}",
            )
        )
        rows.append(
            (
                "time per page outside Tesseract (slot-seconds / page)",
                f"{(ocr_phase * n - ours['recognition_sum_s']) / ours['pages']:.2f} s",
                f"{(floor['ocr_s'] * n - floor_sum) / ours['pages']:.2f} s",
            )
        )
    parts_cpu = ours.get("cpu_parts_s", {})
    if "split" in parts_cpu and "raster_cpu_s" in floor:
        rows.append(
            (
                "CPU time: upload and split / rasterize",
                _s(parts_cpu["split"]),
                _s(floor["raster_cpu_s"]),
            )
        )
    if "OCR" in parts_cpu and "ocr_cpu_s" in floor:
        rows.append(("CPU time: OCR (start to end)", _s(parts_cpu["OCR"]), _s(floor["ocr_cpu_s"])))
    if ours["mean_running"] is not None:
        rows.append(
            (
                "pages running at once (mean over status polls)",
                f"{ours['mean_running']:.2f}",
                f"{n} by construction",
            )
        )
    parts.append("\nThe same steps side by side with the floor:\n")
    parts.append(_md_table(["", "ours", "floor"], rows))
    parts.extend(_slot_tables(results))
    parts.append(
        "\nSources: the client's own clock for the requests and polls; the worker's log for "
        "the split (`split of <slug> done`) and for each page's Tesseract time (`page N "
        "recognised in`); the job's Redis counters for the first page started; the `Job` "
        "row for the end. The OCR phase can only begin once the whole book is split: the "
        "split is on the critical path.\n"
    )

    memory = results["memory"]
    parts.append("## Memory\n")

    def phase(p: dict, name: str) -> str:
        kib = p.get("phase_peaks_kib", {}).get(name)
        return _mb(kib) if kib else "–"

    mem_rows = [
        (
            "web app, all gunicorn processes together (peak of the sum)",
            _mb(memory["group_peak_kib"].get("web", 0)),
            "",
            "",
        )
    ]
    mem_rows += [
        (
            f"{group}: pid {p['pid']} `{p['name']}`",
            _mb(p["peak_kib"]),
            phase(p, "split"),
            phase(p, "OCR"),
        )
        for group in ("web", "worker")
        for p in memory[group]
    ]
    mem_rows.append(
        (
            f"largest Tesseract process (of {memory['tesseract_processes']})",
            _mb(memory["tesseract_peak_kib"]),
            "",
            "",
        )
    )
    mem_rows.append(("redis-server", _mb(memory["redis_peak_kib"]), "", ""))
    parts.append(
        _md_table(
            ["process (peak VmRSS)", "peak", "during upload and split", "during OCR"], mem_rows
        )
    )
    parts.append(
        f"\nSampled every 0.2 s from /proc/<pid>/status ({memory['samples']} samples). RSS "
        "counts pages shared between a parent and its forked children in each of them, so "
        "sums over-state what the processes cost together.\n"
    )

    if results.get("memory_in_page_count"):
        parts.extend(memory_in_page_count_section(results["memory_in_page_count"]))

    redis = ours["redis"]
    parts.append("## Redis memory per job\n")
    parts.append(
        f"Sampled once half of the {ours['pages']} pages were done "
        f"({redis['ocr_queue_length']} page messages still in the `ocr` queue):\n"
    )
    parts.append(
        _md_table(
            ["key", "MEMORY USAGE"],
            [(f"`{k}`", f"{v} B") for k, v in redis["job_keys"].items()]
            + [("**the job's own keys**", f"**{sum(redis['job_keys'].values())} B**")]
            + [(f"Celery: `{k}`", f"{v} B") for k, v in redis["celery_keys"].items()]
            + [
                (
                    "used_memory, change since just before the start (mid-run)",
                    f"{redis['used_memory_delta_mid']} B",
                ),
                (
                    "used_memory, largest change during the job",
                    f"{redis['used_memory_delta_peak']} B",
                ),
            ],
        )
    )
    parts.append(
        "\nThe job's own keys are what app/job_tracking.py writes. Celery's queue and its "
        "`unacked` hash hold one message per page not yet finished (about a kilobyte each), so "
        "they, not the job record, dominate while a job runs; used_memory also moves with "
        "client buffers and allocator slack, so it is an upper bound, not a per-job cost.\n"
    )

    starts = results["starts"]
    parts.append("## Starting and polling large jobs\n")
    start_rows = []
    for size, latency in starts.items():
        posts = latency["post_seconds"]
        start_rows.append(
            (
                size,
                f"{statistics.median(posts) * 1000:.0f} ms (max {max(posts) * 1000:.0f})",
                f"{statistics.median(latency['poll_seconds']) * 1000:.1f} ms "
                f"({latency['status_bytes'] // 1024} KiB)"
                if latency["poll_seconds"]
                else "",
                f"{statistics.median(latency['page_seconds']) * 1000:.0f} ms"
                if latency["page_seconds"]
                else "",
            )
        )
    parts.append(
        _md_table(
            [
                "pages",
                "POST batch-ocr answers in",
                "status poll (median of 50)",
                "progress page (median of 5)",
            ],
            start_rows,
        )
    )
    parts.append(
        "\nProjects of tiny pages inserted directly into the database (one 8×8 PNG shared by "
        "every page). Each start is timed from the request to its 303 answer, "
        f"{len(latency['post_seconds'])} times per size, cancelling the job in between. The "
        "worker is stopped for these timings, so the jobs stay queued and nothing else runs "
        "meanwhile; polls alternate between the small and the large job.\n"
    )

    quality = results["quality"]
    parts.append("## Quality\n")
    parts.append(
        _md_table(
            [f"text of linn.pdf (page {quality['page']} of the book)", "CER"],
            [
                ("ours (the page's text in the database)", f"{quality['ours']:.2%}"),
                (
                    "the `tesseract` command on the image our split made",
                    f"{quality['tesseract']:.2%}",
                ),
                ("the floor (`tesseract` on its own rasterization)", f"{quality['floor']:.2%}"),
                (
                    "the peer (OCRmyPDF's sidecar)",
                    f"{quality['peer']:.2%}" if quality["peer"] is not None else "not run",
                ),
            ],
        )
    )
    same, count = results["images_identical"]
    parts.append(
        f"\nCharacter error rate: Levenshtein distance / length of the reference "
        f"(tests/fixtures/corpus/linn.txt, {quality['reference_chars']} characters), with "
        f"whitespace runs collapsed to one space. {same} of {count} page images the floor "
        "rasterized are byte-identical to those our split made, so the floor and ours "
        "read the same pixels.\n"
    )

    parts.append("## Choosing the renderer\n")
    pages = results["book"]["pages"]
    parts.append(
        _md_table(
            ["renderer", "how", "whole book", "per page", "output", "pixels"],
            [
                (
                    t["name"],
                    f"`{t['command']}`",
                    _s(t["seconds"]),
                    f"{t['seconds'] / pages:.2f} s",
                    f"{t['megabytes']:.0f} MB",
                    f"{t['megapixels']:.0f} Mpx",
                )
                for t in results["renderers"]
            ],
        )
    )
    parts.append(
        "\nEach renderer over the whole book, one page after another in one process. The app "
        "renders each page at its scan's own resolution (within 150–300 DPI), grayscale, "
        "into PNG at compression level 1 (app/rendering.py)"
        + (
            f"; {results['pdftoppm_pages']} of the {pages} pages have a scan too big for PDFium "
            "to decode within the worker's memory target, and go to pdftoppm, which is slower "
            "(see Memory in the page count)"
            if results.get("pdftoppm_pages")
            else ""
        )
        + ".\n"
    )

    if results.get("export_pdf"):
        peer = results.get("peer")
        parts.extend(export_run.markdown(results["export_pdf"], peer["total_s"] if peer else None))
    if results.get("books"):
        parts.extend(books_run.markdown(results["books"], meta.get("books_run")))
    if results.get("fairness"):
        parts.extend(fairness.markdown(results["fairness"]))
    parts.append("## Load from elsewhere, per phase\n")
    parts.append(
        _md_table(
            [
                "phase",
                "wall",
                "CPU of the contender's processes",
                "CPU of the benchmark's client",
                "CPU used by other processes",
            ],
            [
                (
                    name,
                    _s(p["wall_s"]),
                    _s(p["own_cpu_s"]),
                    _s(p.get("harness_cpu_s")),
                    f"{p['others_share']:.0%} of the machine",
                )
                for name, p in phases.items()
            ],
        )
    )
    parts.append("")
    parts.append(METHOD)
    return "\n".join(parts).rstrip() + "\n"


HEADER = """# Performance

How fast a scanned book goes from upload to text through this system, compared in one run on
one machine with the fastest way to get the same text (the floor) and with OCRmyPDF (the peer).
This file is written by the benchmark itself from its last full run; do not edit the figures.

Reproduce it with:

```sh
make bench                                  # the full run (a 60-page book); rewrites this file
.venv/bin/python -m tests.bench.run --quick # a 12-page try-out; writes tests/artifacts/
```

Options (`make bench BENCH_ARGS="..."`): `--pages N` (book size, default 60), `--quick`,
`--skip-peer`, `--rounds N` (measure floor, ours and peer N times, alternating, and keep each
one's fastest round: steadier figures on a busy machine, N times longer), `--keep` (keep the
temp directory with the worker's and gunicorn's logs), `--skip-books` (leave out the four
books), `--bilevel-pages N` (pages of the TIFF, CCITT and grey books, default 20). The raw
figures of every run are saved as JSON in `tests/artifacts/`; `--render FILE.json` rewrites the
report from one. The four books alone: `.venv/bin/python -m tests.bench.books_run [--into
FILE.json]` (with `--into`, their figures replace those of a saved run, to render again).
"""

METHOD = """## How it is measured

- **The book** is assembled with pypdfium2 from the real scans in tests/fixtures/corpus
  (multipage.pdf's six pages, then c02-22, linn, skew and francais, repeated) into a temp
  directory.
- **Floor**: the pages rasterized once with app/rendering.py (the split's own code, so the
  same pixels), one process per core; then the `tesseract IMAGE OUT -l eng` command on every
  page image, as many at once as there are cores, with `OMP_THREAD_LIMIT=1`, text output.
  Rasterization and OCR are timed apart; the floor is their sum.
- **Peer**: `ocrmypdf --jobs <cores> --force-ocr --output-type pdf --sidecar out.txt in.pdf
  out.pdf` with `OMP_THREAD_LIMIT=1`, as OCRmyPDF recommends with `--jobs`.
- **Ours**: a private redis-server, `celery -A worker worker -Q celery,ocr --concurrency
  <cores>` and `gunicorn -w 2 --threads 4 'app:create_app()'` on SQLite in a temp directory;
  over HTTP with `requests`: sign in, upload the PDF to /proofing/create-project, poll
  split-status until ready, POST batch-ocr (engine=tesseract, pages=all), poll its status
  every 0.2 s until the job ends. Timed from the upload request to the first poll that sees
  the job ended; the job must have succeeded with every page done.
- **Memory**: VmRSS of every process of the web app's and the worker's process trees, every
  0.2 s, the peak per process kept.
- **Shared machine**: the CPU used by other processes in each phase is the machine's busy
  time (/proc/stat) less the CPU of the phase's own processes.
"""
