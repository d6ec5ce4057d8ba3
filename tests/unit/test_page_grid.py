"""The page grid of the batch OCR pages (app/views/page_grid.py)."""

from __future__ import annotations

import html
import re

from app.views.page_grid import page_grid


def test_each_page_is_a_cell_linking_to_its_editor_with_its_state():
    grid = str(
        page_grid([{"number": 1, "state": "done"}, {"number": 12, "state": "queued"}], "/p/b/")
    )
    cells = re.findall(r'<li class="cell (\w+)" title="([^"]*)"><a href="([^"]+)"', grid)
    assert cells == [("done", "Page 1: done", "/p/b/1/"), ("queued", "Page 12: queued", "/p/b/12/")]


def test_a_reason_is_escaped_and_shown_in_the_title():
    """An engine's reason can hold anything, markup included: it is text, never HTML."""
    reason = '<img src=x onerror="alert(1)"> & more'
    grid = str(page_grid([{"number": 3, "state": "failed", "reason": reason}], "/p/b/"))
    assert "<img" not in grid
    [title] = re.findall(r'title="([^"]*)"', grid)
    assert html.unescape(title) == f"Page 3: failed — {reason}"


def test_no_pages_is_an_empty_grid():
    assert str(page_grid([], "/p/b/")) == ""
