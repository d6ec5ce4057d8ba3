"""Batch OCR's "pages never edited by a person" with the proofreading levels: a person's
save at any level (needs work included) and a search and replace keep the page out; OCR's own
revisions, whatever level the page is at, do not."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Page, PageStatus
from app.services.batch_ocr.start import SELECTIONS, _selected_pages
from app.services.pages import save_page_text
from app.services.replace import Replacement, apply_replace, preview_replace
from tests.support import BOTH_DATABASES, add_ready_project


@BOTH_DATABASES
def test_unedited_leaves_out_every_page_a_person_saved_at_any_level(app, people):
    assert "unedited" in SELECTIONS
    project = add_ready_project("levels", 6)
    pages = db.session.scalars(select(Page).filter_by(project_id=project.id)).all()
    reader = people["reader"]
    # Saved by a person at each level, even "needs work", which is the level a page starts at.
    assert save_page_text(pages[0], reader, "a", 0, status=PageStatus.NEEDS_WORK).saved
    assert save_page_text(pages[1], reader, "b", 0, status=PageStatus.PROOFREAD_ONCE).saved
    assert save_page_text(pages[2], people["second"], "c", 0, status=PageStatus.NOT_RELEVANT).saved
    # Changed by a search and replace, which saves in a person's name.
    pages[3].text = "olde"
    db.session.commit()
    replacement = Replacement.parse("olde", "old")
    apply_replace(project, replacement, preview_replace(project, replacement).versions, reader)
    # OCR wrote page 5 (machine text, no person), and page 6 has nothing yet.
    pages[4].version, pages[4].text, pages[4].ocr_state = 1, "machine", "done"
    db.session.commit()

    selected = _selected_pages(project, "unedited")

    assert selected == [pages[4].id, pages[5].id]
    assert len(_selected_pages(project, "all")) == 6
