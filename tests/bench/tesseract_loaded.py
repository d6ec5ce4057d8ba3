"""Tesseract kept loaded (the engine's helper) against one `tesseract` process per page.

    .venv/bin/python -m tests.bench.tesseract_loaded PAGES_DIR [RUNS]

PAGES_DIR holds page images (searched recursively; a name ending in "-san.png" is read with
`san`, any other with `eng`). For each page: the median wall and CPU seconds of
`tesseract PAGE OUT -l LANG txt tsv` (what the engine ran before), and of the Tesseract kept
loaded (app/engines/loaded_tesseract.py, its helper's CPU); and whether the two give the same
text and the same word boxes. The command's fixed cost (process start and model load) is
measured on a tiny blank page. Its figures are in docs/scan-formats.md.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
from PIL import Image

from app.engines.loaded_tesseract import helper
from tests.support import tesseract_text_and_words

ENV = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # as the worker runs Tesseract


def children_cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.children_user + times.children_system


def cli(page: Path, language: str, out: Path) -> tuple[float, float, str, list[list]]:
    cpu, wall = children_cpu(), time.perf_counter()
    text, words = tesseract_text_and_words(page, language, out)
    return time.perf_counter() - wall, children_cpu() - cpu, text, words


def helper_cpu() -> float:
    times = psutil.Process(helper().pid).cpu_times()
    return times.user + times.system


def loaded(page: Path, language: str) -> tuple[float, float, str, list[list]]:
    cpu, wall = helper_cpu(), time.perf_counter()
    reading = helper().read(page, language, 300)
    return time.perf_counter() - wall, helper_cpu() - cpu, reading.text, reading.words


def measure(pages: list[Path], runs: int, label=lambda page: page.name) -> dict:
    work = Path(tempfile.mkdtemp())
    tiny = work / "tiny.png"
    Image.new("1", (64, 64), 1).save(tiny)
    fixed = [cli(tiny, "eng", work / "t")[:2] for _ in range(5)]
    helper().read(tiny, "eng", 60)  # started, English loaded
    rows, totals, same = [], [0.0, 0.0, 0.0, 0.0], 0
    for page in pages:
        language = "san" if page.name.endswith("-san.png") else "eng"
        by_cli, by_helper = [], []
        for _ in range(runs):
            *figures, cli_text, cli_words = cli(page, language, work / "o")
            by_cli.append(figures)
            *figures, text, words = loaded(page, language)
            by_helper.append(figures)
        agrees = (text, words) == (cli_text, cli_words)
        same += agrees
        medians = [
            statistics.median(f[0] for f in by_cli),
            statistics.median(f[1] for f in by_cli),
            statistics.median(f[0] for f in by_helper),
            statistics.median(f[1] for f in by_helper),
        ]
        totals = [t + m for t, m in zip(totals, medians, strict=True)]
        rows.append({"page": label(page), "figures": medians, "same": agrees})
    return {
        "fixed_wall_s": statistics.median(w for w, _ in fixed),
        "fixed_cpu_s": statistics.median(c for _, c in fixed),
        "tesseract": helper().version,
        "rows": rows,
        "totals": totals,
        "same": same,
        "pages": len(pages),
    }


def markdown(result: dict) -> list[str]:
    lines = [
        f"Tesseract {result['tesseract']}. The `tesseract` command's fixed cost (a tiny blank "
        f"page), wall / CPU: {result['fixed_wall_s']:.3f} s / {result['fixed_cpu_s']:.3f} s.\n",
        "| page | command wall s | command CPU s | kept loaded wall s | kept loaded CPU s "
        "| same text and boxes |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        cells = " | ".join(f"{f:.2f}" for f in row["figures"])
        lines.append(f"| {row['page']} | {cells} | {'yes' if row['same'] else '**no**'} |")
    cells = " | ".join(f"{t:.2f}" for t in result["totals"])
    lines.append(f"| all {result['pages']} | {cells} | {result['same']} of {result['pages']} |")
    wall, _cpu, loaded_wall, _loaded_cpu = result["totals"]
    lines.append(f"\nKept loaded / command, wall: {loaded_wall / wall:.2f}.\n")
    return lines


def main() -> int:
    pages_dir, runs = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3
    pages = sorted(p for p in pages_dir.rglob("*") if p.suffix in (".png", ".jpg", ".tif"))
    result = measure(pages, runs, lambda page: str(page.relative_to(pages_dir)))
    print("\n".join(markdown(result)))
    helper().stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
