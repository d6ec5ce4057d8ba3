"""A bilevel (1-bit, 300 DPI) Group 4 TIFF through the real stack: uploaded through the form,
split by the worker, read by Tesseract, and served by the page image endpoint still 1-bit and
at its resolution; Tesseract's text is what the `tesseract` command gives on the same file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.models import Page, Project
from app.services import batch_ocr
from tests.bench import books
from tests.support import editor_client, tesseract_cli, upload_form, wait_for, wait_for_job_end

pytestmark = pytest.mark.integration

SLUG = "bilevel-tiff"


def test_a_1_bit_tiff_page_stays_1_bit_at_300_dpi_through_upload_ocr_and_the_image_endpoint(
    stack, stack_app, tmp_path
):
    client = editor_client(stack.app)
    tiff = books.write_g4_tiff(tmp_path, pages=2)  # linn.pdf and skew.pdf, thresholded
    response = upload_form(client, "book.tif", tiff.read_bytes(), slug=SLUG, title="Bilevel")
    assert response.status_code == 302, response.get_data(as_text=True)

    def split_ended():
        state = client.get(f"/proofing/{SLUG}/split-status").get_json()
        return state if state["status"] != "splitting" else None

    state = wait_for(split_ended, 120, "the split of the TIFF")
    assert (state["status"], state["pages_done"]) == ("ready", 2), state

    project = db.session.scalar(select(Project).filter_by(slug=SLUG))
    outcome = batch_ocr.start_batch_ocr(
        project, engine="tesseract", language=None, selection="all", user=None
    )
    assert outcome.started
    status = wait_for_job_end(project)
    assert status["state"] == "succeeded", status

    data_dir = Path(stack.config["DATA_DIR"])
    db.session.expire_all()
    pages = list(db.session.scalars(select(Page).filter_by(project_id=project.id)))
    with Image.open(tiff) as source:
        for page in sorted(pages, key=lambda p: p.number):
            source.seek(page.number - 1)
            assert page.dpi == 300
            assert (page.width, page.height) == source.size
            with client.get(f"/proofing/{SLUG}/{page.number}/image") as response:
                assert response.status_code == 200
                assert response.mimetype == "image/png"
                served = response.data
            with Image.open(io.BytesIO(served)) as image:
                assert image.mode == "1"
                assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
                assert image.tobytes() == source.tobytes(), "not the scan's own pixels"
            stored = data_dir / page.image_path
            assert page.text.strip()
            assert page.text == tesseract_cli(stored, "eng")
