"""A page's history: its revisions newest first, one revision's diff against the one before
it, and restoring an old text as a new revision.

Seen by whoever sees the page; restoring is a save, so whoever may save the page may restore.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.services import history
from app.text.diff import changed_words, diff_html
from app.views.access import page_or_404

bp = Blueprint("history", __name__, url_prefix="/proofing/<slug>/<int:number>")


@bp.route("/history")
@login_required
def page_history(slug: str, number: int):
    page = page_or_404(slug, number)
    found = history.page_history(page, request.args.get("page", 1, type=int))
    return render_template("pages/history.html", project=page.project, page=page, history=found)


@bp.route("/revisions/<int:revision_id>")
@login_required
def revision(slug: str, number: int, revision_id: int):
    page = page_or_404(slug, number)
    return _revision_page(page, revision_id)


def _revision_page(page, revision_id: int, conflict: dict | None = None):
    found = history.revision_of(page, revision_id)
    if found is None:
        abort(404, f"Page {page.number} has no revision {revision_id}.")
    previous = history.previous_revision(found)
    before = previous.text if previous else ""
    return render_template(
        "pages/revision.html",
        project=page.project,
        page=page,
        revision=found,
        number=history.revision_number(found),
        author=history.author_label(found.author),
        previous=previous,
        diff=diff_html(before, found.text),
        changed=changed_words(before, found.text),
        is_current=found.text == page.text,
        conflict=conflict,
    )


@bp.route("/revisions/<int:revision_id>/restore", methods=["POST"])
@login_required
def restore(slug: str, number: int, revision_id: int):
    page = page_or_404(slug, number)
    found = history.revision_of(page, revision_id)
    if found is None:
        abort(404, f"Page {page.number} has no revision {revision_id}.")
    try:
        base_version = int(request.form.get("version", ""))
    except ValueError:
        abort(400, "The form did not say which version of the page it restores over.")
    if not -(2**63) <= base_version < 2**63:
        abort(400, "The form did not say which version of the page it restores over.")
    outcome = history.restore_revision(page, found, current_user, base_version)
    if outcome.refused:
        flash(outcome.refused, "error")
        return _revision_page(page, revision_id), 422
    if not outcome.saved:
        conflict = {"author": outcome.current_author, "version": outcome.current_version}
        return _revision_page(page, revision_id, conflict=conflict), 409
    flash(f"Revision {history.revision_number(found)} restored as a new revision.", "info")
    return redirect(url_for("history.page_history", slug=slug, number=number), code=303)
