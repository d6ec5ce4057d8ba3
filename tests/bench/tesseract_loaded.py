"""An experiment, not wired in: Tesseract kept loaded (tesserocr) against one `tesseract`
process per page, on page images the split stored.

tesserocr is not a dependency of the project. Its wheel bundles its own Tesseract (5.5.4 for
tesserocr 2.13.0), not the system's, so run it in a throwaway virtualenv:

    python3.11 -m venv /tmp/tvenv && /tmp/tvenv/bin/pip install tesserocr==2.13.0
    /tmp/tvenv/bin/python tests/bench/tesseract_loaded.py PAGES_DIR [RUNS]

PAGES_DIR holds the page images (searched recursively; a name ending in "-san.png" is read
with `san`, any other with `eng`). For each page: the median wall and CPU seconds of
`tesseract PAGE OUT -l LANG txt tsv` (what the engine runs), and of SetImageFile, GetUTF8Text
and GetTSVText on one PyTessBaseAPI per language made once; and whether the two texts agree.
The `tesseract` command's fixed cost (process start and model load) is measured on a tiny
blank page.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"  # as the worker runs Tesseract

import tesserocr  # noqa: E402 -- after OMP_THREAD_LIMIT, which it reads when loaded
from PIL import Image  # noqa: E402

TESSDATA = "/usr/share/tesseract-ocr/5/tessdata/"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli(page: Path, language: str, out: Path) -> tuple[float, float]:
    cpu, wall = children_cpu(), time.perf_counter()
    subprocess.run(
        ["tesseract", str(page), str(out), "-l", language, "txt", "tsv"],
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - wall, children_cpu() - cpu


def main() -> int:
    pages_dir, runs = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3
    pages = sorted(p for p in pages_dir.rglob("*") if p.suffix in (".png", ".jpg", ".tif"))
    work = Path(tempfile.mkdtemp())
    tiny = work / "tiny.png"
    Image.new("1", (64, 64), 1).save(tiny)
    fixed = [cli(tiny, "eng", work / "t") for _ in range(5)]
    wall, cpu = time.perf_counter(), time.process_time()
    apis = {lang: tesserocr.PyTessBaseAPI(path=TESSDATA, lang=lang) for lang in ("eng", "san")}
    init = (time.perf_counter() - wall, time.process_time() - cpu)
    print(f"tesserocr: {tesserocr.tesseract_version().splitlines()[0]}")
    fixed_wall = statistics.median(w for w, _ in fixed)
    fixed_cpu = statistics.median(c for _, c in fixed)
    print(f"`tesseract` fixed cost (tiny page), wall/CPU s: {fixed_wall:.3f} / {fixed_cpu:.3f}")
    print(f"tesserocr start (eng and san loaded), wall/CPU s: {init[0]:.3f} / {init[1]:.3f}")
    print("| page | CLI wall s | CLI CPU s | loaded wall s | loaded CPU s | same text |")
    print("|---|---|---|---|---|---|")
    totals = [0.0, 0.0, 0.0, 0.0]
    same = 0
    for page in pages:
        language = "san" if page.name.endswith("-san.png") else "eng"
        by_cli, by_api = [], []
        text = ""
        for _ in range(runs):
            by_cli.append(cli(page, language, work / "o"))
            api = apis[language]
            cpu, wall = time.process_time(), time.perf_counter()
            api.SetImageFile(str(page))
            text = api.GetUTF8Text()
            api.GetTSVText(0)
            by_api.append((time.perf_counter() - wall, time.process_time() - cpu))
        # The command ends a page with a form feed; the API does not.
        agrees = (work / "o.txt").read_text().replace("\f", "").strip() == text.strip()
        same += agrees
        figures = [
            statistics.median(w for w, _ in by_cli),
            statistics.median(c for _, c in by_cli),
            statistics.median(w for w, _ in by_api),
            statistics.median(c for _, c in by_api),
        ]
        totals = [t + f for t, f in zip(totals, figures, strict=True)]
        cells = " | ".join(f"{f:.2f}" for f in figures)
        print(f"| {page.relative_to(pages_dir)} | {cells} | {'yes' if agrees else 'no'} |")
    cells = " | ".join(f"{t:.2f}" for t in totals)
    print(f"| all {len(pages)} | {cells} | {same} of {len(pages)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
