"""The Tesseract kept loaded (app/engines/loaded_tesseract.py and tesseract_server.py), real.

Its text and word boxes must be the `tesseract IMAGE OUT txt tsv` command's, byte for byte,
on real scans in Latin and Devanagari; a page over its time limit, a helper that hangs or
crashes, an unreadable image and an unknown language each fail the page with a reason and
leave the next page to a working helper.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw, ImageFont

from app.engines import OcrError
from app.engines.loaded_tesseract import KILL_GRACE, helper
from app.engines.tesseract import ENGINE
from tests.support import corpus, tesseract_text_and_words, wait_for

CONFIG = {"TESSERACT_CMD": "tesseract"}
GITA = ["धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः ।", "मामकाः पाण्डवाश्चैव किमकुर्वत सञ्जय ॥"]
DEVANAGARI_FONT = Path("/usr/share/fonts/truetype/noto/NotoSerifDevanagari-Regular.ttf")


@pytest.fixture(scope="module")
def linn(tmp_path_factory) -> Path:
    """linn.pdf's bilevel 300 DPI scan, the full page (about 2 s of Tesseract)."""
    out = tmp_path_factory.mktemp("linn") / "linn.png"
    pdf = pdfium.PdfDocument(str(corpus("linn.pdf")))
    try:
        image = pdf[0].render(scale=300 / 72, grayscale=True).to_pil().convert("L")
    finally:
        pdf.close()
    image.point(lambda level: 255 if level >= 128 else 0).convert("1").save(out, dpi=(300, 300))
    return out


@pytest.fixture(scope="module")
def linn_top(linn, tmp_path_factory) -> Path:
    """The top third of it: the same pixels, a quicker page."""
    out = tmp_path_factory.mktemp("linn-top") / "top.png"
    with Image.open(linn) as image:
        image.crop((0, 0, image.width, image.height // 3)).save(out, dpi=(300, 300))
    return out


@pytest.fixture(scope="module")
def devanagari(tmp_path_factory) -> Path:
    if not DEVANAGARI_FONT.is_file():
        pytest.fail(f"{DEVANAGARI_FONT} is missing: make test installs fonts-noto-core")
    out = tmp_path_factory.mktemp("san") / "san.png"
    image = Image.new("L", (1800, 420), 255)
    font = ImageFont.truetype(str(DEVANAGARI_FONT), 50)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(
        ["धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः ।", "मामकाः पाण्डवाश्चैव किमकुर्वत सञ्जय ॥"]
    ):
        draw.text((60, 60 + number * 150), line, font=font, fill=0)
    image.save(out, dpi=(300, 300))
    return out


def running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (its state in /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def command_output(image: Path, language: str, tmp_path: Path) -> tuple[str, list[list]]:
    return tesseract_text_and_words(image, language, tmp_path / "cli")


@pytest.mark.parametrize(("image", "language"), [("linn_top", "eng"), ("devanagari", "san")])
def test_text_and_word_boxes_are_the_tesseract_commands(request, tmp_path, image, language):
    path = request.getfixturevalue(image)
    result = ENGINE.recognize(path, language, CONFIG, 60)
    text, words = command_output(path, language, tmp_path)
    assert result.text.strip(), "nothing was read"
    assert result.text == text
    assert result.boxes == words
    assert len({word[6] for word in words}) > 1, "one line only: the line numbers are untested"


def test_one_helper_reads_page_after_page(linn_top):
    ENGINE.recognize(linn_top, "eng", CONFIG, 60)
    first = helper().pid
    ENGINE.recognize(linn_top, "eng", CONFIG, 60)
    assert first is not None and helper().pid == first


def test_a_page_over_its_time_limit_is_stopped_by_tesseract_and_the_helper_lives(linn):
    ENGINE.recognize(Path(linn).with_name("linn.png"), "eng", CONFIG, 60)  # loaded, warm
    before = helper().pid
    started = time.monotonic()
    with pytest.raises(OcrError, match=r"^Tesseract took longer than 0 s on this page$"):
        ENGINE.recognize(linn, "eng", CONFIG, 0.3)
    assert time.monotonic() - started < KILL_GRACE, "it was killed, not stopped by its deadline"
    assert helper().pid == before


def test_a_hung_helper_is_killed_past_the_limit_and_the_next_page_gets_a_new_one(linn_top):
    ENGINE.recognize(linn_top, "eng", CONFIG, 60)
    hung = helper().pid
    os.kill(hung, signal.SIGSTOP)  # hangs for real: it will never answer
    started = time.monotonic()
    with pytest.raises(OcrError, match=r"^Tesseract took longer than 1 s on this page$"):
        ENGINE.recognize(linn_top, "eng", CONFIG, 1)
    assert time.monotonic() - started < 1 + KILL_GRACE + 2
    assert not running(hung), f"the hung helper {hung} was not killed"
    assert ENGINE.recognize(linn_top, "eng", CONFIG, 60).text.strip()
    assert helper().pid not in (None, hung)


def test_a_helper_that_crashes_mid_page_fails_that_page_only(linn):
    ENGINE.recognize(linn, "eng", CONFIG, 60)
    victim = helper().pid
    killer = threading.Timer(0.5, os.kill, (victim, signal.SIGKILL))
    killer.start()
    with pytest.raises(OcrError, match=r"^Tesseract stopped on this page \(.*exited with -9\)$"):
        ENGINE.recognize(linn, "eng", CONFIG, 60)
    killer.join()
    assert ENGINE.recognize(linn, "eng", CONFIG, 60).text.strip()


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n" + bytes(40), bytes(range(128, 256)) * 64],
    ids=["truncated PNG", "garbage bytes"],
)
def test_an_unreadable_image_fails_with_a_readable_reason(tmp_path, content):
    path = tmp_path / "page.png"
    path.write_bytes(content)
    with pytest.raises(OcrError, match="^Tesseract could not read the page image: the image"):
        ENGINE.recognize(path, "eng", CONFIG, 60)


def test_a_language_without_a_model_is_named(linn_top):
    with pytest.raises(OcrError, match=r"^Tesseract has no model for the language 'xx'$"):
        ENGINE.recognize(linn_top, "xx", CONFIG, 60)
    assert ENGINE.recognize(linn_top, "eng", CONFIG, 60).text.strip()


def test_the_helper_ends_with_its_worker_process(linn_top):
    """A worker process killed outright leaves no helper behind."""
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from app.engines.loaded_tesseract import helper\n"
        f"helper().read(Path({str(linn_top)!r}), 'eng', 60)\n"
        "print(helper().pid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    worker = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert worker.returncode == -9, worker.stderr
    helper = int(worker.stdout.split()[0])
    wait_for(lambda: not running(helper), 10, f"helper {helper} to end")


def test_a_blank_page_gives_no_text_and_no_words_as_the_command(tmp_path):
    pdf = pdfium.PdfDocument(str(corpus("blank.pdf")))
    try:
        pdf[0].render(scale=150 / 72).to_pil().save(tmp_path / "blank.png", dpi=(150, 150))
    finally:
        pdf.close()
    result = ENGINE.recognize(tmp_path / "blank.png", "eng", CONFIG, 60)
    assert (result.text, result.boxes) == command_output(tmp_path / "blank.png", "eng", tmp_path)
    assert result.text.strip() == ""


def test_each_thread_has_its_own_helper(linn_top):
    """A thread pool's threads read their pages side by side, each with its own helper."""
    pids = []

    def read():
        ENGINE.recognize(linn_top, "eng", CONFIG, 60)
        pids.append(helper().pid)
        helper().stop()

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(pids)) == 2 and None not in pids, pids


def test_a_helper_grown_past_its_memory_limit_ends_and_the_next_page_gets_a_new_one(linn_top):
    """Memory stays flat: a helper whose resident memory passed TESSERACT_HELPER_MAX_MB after
    a page answers that page, then ends (here the limit is below any helper's size)."""
    small = CONFIG | {"TESSERACT_HELPER_MAX_MB": 1}
    first = ENGINE.recognize(linn_top, "eng", small, 60)
    assert first.text.strip()
    assert helper().pid is None, "the helper did not end"
    second = ENGINE.recognize(linn_top, "eng", CONFIG, 60)
    assert (second.text, second.boxes) == (first.text, first.boxes)
    assert helper().pid is not None, "a helper under its limit ended"
