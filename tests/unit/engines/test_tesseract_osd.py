"""Reading Tesseract's orientation detection (app/engines/tesseract.py `detect_rotation`)
through a stand-in `tesseract` that prints what the real one prints; the real one is run by
tests/integration/test_orientation.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engines.tesseract import OSD_MIN_CONFIDENCE, detect_rotation

OSD_OUTPUT = """Page number: 0
Orientation in degrees: {orientation}
Rotate: {rotate}
Orientation confidence: {confidence}
Script: Latin
Script confidence: 2.90
"""


def fake_tesseract(tmp_path: Path, stdout: str = "", stderr: str = "", code: int = 0) -> str:
    """A `tesseract` that prints `stdout` and `stderr` and exits with `code`, and records its
    arguments."""
    (tmp_path / "out.txt").write_text(stdout)
    (tmp_path / "err.txt").write_text(stderr)
    script = tmp_path / "tesseract"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {tmp_path}/args\n'
        f"cat {tmp_path}/out.txt\ncat {tmp_path}/err.txt >&2\nexit {code}\n"
    )
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_a_confident_turn_is_returned(tmp_path, rotate):
    cmd = fake_tesseract(
        tmp_path, OSD_OUTPUT.format(orientation=360 - rotate, rotate=rotate, confidence="32.59")
    )
    assert detect_rotation(tmp_path / "page.png", cmd=cmd) == rotate
    assert (tmp_path / "args").read_text().split() == [
        str(tmp_path / "page.png"),
        "-",
        "--psm",
        "0",
    ]


def test_upright_is_zero(tmp_path):
    cmd = fake_tesseract(tmp_path, OSD_OUTPUT.format(orientation=0, rotate=0, confidence="34.4"))
    assert detect_rotation(tmp_path / "page.png", cmd=cmd) == 0


def test_an_unsure_guess_leaves_the_page_as_it_is(tmp_path):
    low = f"{OSD_MIN_CONFIDENCE - 0.1:.2f}"
    cmd = fake_tesseract(tmp_path, OSD_OUTPUT.format(orientation=90, rotate=270, confidence=low))
    assert detect_rotation(tmp_path / "page.png", cmd=cmd) == 0


def test_a_page_osd_cannot_read_is_left_as_it_is(tmp_path):
    """What Tesseract says of a blank page, or of too little text."""
    cmd = fake_tesseract(
        tmp_path, stderr="Too few characters. Skipping this page\nError during processing.\n",
        code=1,
    )  # fmt: skip
    assert detect_rotation(tmp_path / "page.png", cmd=cmd) == 0


def test_no_tesseract_leaves_the_page_as_it_is(tmp_path, caplog):
    assert detect_rotation(tmp_path / "page.png", cmd=str(tmp_path / "missing")) == 0
    assert "orientation detection of page.png failed" in caplog.text


def test_a_hung_tesseract_is_stopped(tmp_path):
    script = tmp_path / "tesseract"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    assert detect_rotation(tmp_path / "page.png", cmd=str(script), timeout=0.5) == 0
