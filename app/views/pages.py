"""A page: its image beside its text, saving a revision, and the image file itself."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select

from app.extensions import db
from app.models import Page, PageStatus
from app.services.pages import StatusError, parse_status, save_page_text
from app.services.projects import pages_split
from app.views.access import project_or_404

bp = Blueprint("pages", __name__)


def _page_or_404(slug: str, number: int) -> Page:
    project = project_or_404(slug)
    page = db.session.scalar(select(Page).filter_by(project_id=project.id, number=number))
    if page is None:
        abort(404, f"Project {slug!r} has no page {number}.")
    return page


@bp.route("/proofing/<slug>/<int:number>/", methods=["GET", "POST"])
@login_required
def edit(slug: str, number: int):
    page = _page_or_404(slug, number)
    if request.method == "GET":
        return _editor(page, conflict=None)
    try:
        base_version = int(request.form.get("version", ""))
    except ValueError:
        base_version = None
    if base_version is None or not -(2**63) <= base_version < 2**63:  # no column holds more
        abort(400, "The form did not say which version of the page it edits.")
    text = request.form.get("text", "")
    try:
        status = parse_status(request.form.get("status"))
    except StatusError as error:
        return _editor(page, conflict=None, typed=text, refusal=str(error)), 422
    outcome = save_page_text(
        page, current_user, text, base_version, request.form.get("summary", ""), status
    )
    if outcome.refused:
        # The status rule said no; what was typed stays in the box.
        return _editor(page, conflict=None, typed=text, refusal=outcome.refused), 422
    if not outcome.saved:
        # Both texts are shown; the user's is kept in the box so nothing typed is lost.
        conflict = {
            "mine": text,
            "theirs": outcome.current_text,
            "author": outcome.current_author,
        }
        return _editor(page, conflict=conflict), 409
    flash(f"Page {page.number} saved.", "info")
    next_page = request.form.get("go") == "next" and db.session.scalar(
        select(Page.number).filter_by(project_id=page.project_id, number=page.number + 1)
    )
    return redirect(url_for("pages.edit", slug=slug, number=next_page or page.number))


def _editor(page: Page, conflict: dict | None, typed: str | None = None, refusal: str = "") -> str:
    # Counted, not `project.pages|length`: that loads every page of the book on each view.
    return render_template(
        "pages/edit.html",
        page=page,
        project=page.project,
        page_count=pages_split(page.project),
        conflict=conflict,
        typed=typed,
        refusal=refusal,
        statuses=list(PageStatus),
    )


@bp.route("/proofing/<slug>/<int:number>/image")
@login_required
def image(slug: str, number: int):
    page = _page_or_404(slug, number)
    data_dir = Path(current_app.config["DATA_DIR"]).resolve()
    path = (data_dir / page.image_path).resolve()
    # The stored path comes from our own split, but never serve anything outside DATA_DIR.
    if not path.is_relative_to(data_dir) or not path.is_file():
        abort(404, "The page image is missing.")
    return send_file(path, max_age=3600, conditional=True)
