"""The grid of page cells on the batch OCR pages (progress and summary).

Written here rather than as a Jinja loop: on a 2000-page book the loop's attribute lookups and
escaping took 25 ms of the progress page's 29 (tests/bench/profile_views.py). Only the reason,
which comes from an engine, can hold markup, and it is escaped; the state is one of a fixed
few words and the number an integer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from markupsafe import Markup, escape


def page_grid(pages: Iterable[dict[str, Any]], project_url: str) -> Markup:
    """`<li>` cells, one per page, each linking to the page's editor under `project_url`
    (a page's editor is /proofing/<slug>/<number>/, app/views/pages.py)."""
    base = escape(project_url)
    cells = []
    for page in pages:
        number, state = int(page["number"]), escape(page["state"])
        reason = page.get("reason")
        title = f"Page {number}: {state}" + (f" — {escape(reason)}" if reason else "")
        cells.append(
            f'<li class="cell {state}" title="{title}"><a href="{base}{number}/" '
            f'aria-label="Page {number}: {state}">{number}</a></li>'
        )
    return Markup("".join(cells))
