"""A page: its scan beside its text, saving a revision, the scan's preview and full image, the
alignment of the text's lines to the OCR lines, and 'OCR this page again'."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
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
from app.queue import QueueUnavailable
from app.services import page_previews, page_reocr
from app.services.pages import StatusError, parse_status, save_page_text
from app.services.projects import pages_split
from app.text.alignment import line_map, ocr_lines
from app.text.diff import diff_html
from app.text.scripts import INPUT_SCHEMES, indic_script
from app.views.access import project_or_404

bp = Blueprint("pages", __name__)

#: Characters of text the alignment endpoint takes: far above any page, well below a DoS.
MAX_ALIGN_CHARS = 200_000


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
        mine = text.replace("\r\n", "\n")
        conflict = {
            "mine": mine,
            "theirs": outcome.current_text,
            "author": outcome.current_author,
            "diff": diff_html(outcome.current_text, mine),
        }
        return _editor(page, conflict=conflict), 409
    flash(f"Page {page.number} saved.", "info")
    next_page = request.form.get("go") == "next" and db.session.scalar(
        select(Page.number).filter_by(project_id=page.project_id, number=page.number + 1)
    )
    return redirect(url_for("pages.edit", slug=slug, number=next_page or page.number))


def _editor(page: Page, conflict: dict | None, typed: str | None = None, refusal: str = "") -> str:
    text = conflict["mine"] if conflict else (typed if typed is not None else page.text)
    project = page.project
    preview_width, preview_height = page_previews.preview_size(page.width, page.height)
    # What editor.js needs, in one JSON object: the scan's two levels, the OCR lines drawn
    # over it and which of them each line of the text in the box stands for.
    scan_problem = _scan_problem(page)
    missing = scan_problem is not None
    if missing:
        # Drawn in the viewer instead, with the reason above it: no request that must fail.
        placeholder = url_for("static", filename="missing-scan.svg")
    setup = {
        "width": page.width,
        "height": page.height,
        "preview": {
            "url": placeholder
            if missing
            else url_for("pages.preview", slug=project.slug, number=page.number),
            "width": preview_width,
            "height": preview_height,
        },
        "image": placeholder
        if missing
        else url_for("pages.image", slug=project.slug, number=page.number),
        "ocrLines": [list(_xywh(line.box)) for line in ocr_lines(page.ocr_boxes)],
        "lineMap": [m and m["line"] for m in line_map(text, page.ocr_boxes)],
        "linesUrl": url_for("pages.lines", slug=project.slug, number=page.number),
        "reocrUrl": url_for("pages.reocr", slug=project.slug, number=page.number),
        "script": indic_script(project.language),
    }
    # Counted, not `project.pages|length`: that loads every page of the book on each view.
    return render_template(
        "pages/edit.html",
        page=page,
        project=project,
        page_count=pages_split(project),
        conflict=conflict,
        text=text,
        refusal=refusal,
        statuses=list(PageStatus),
        scan_problem=scan_problem,
        setup=setup,
        schemes=INPUT_SCHEMES,
    )


def _xywh(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    return left, top, right - left, bottom - top


@bp.route("/proofing/<slug>/<int:number>/image")
@login_required
def image(slug: str, number: int):
    page = _page_or_404(slug, number)
    return send_file(_image_file(page), max_age=3600, conditional=True)


@bp.route("/proofing/<slug>/<int:number>/preview")
@login_required
def preview(slug: str, number: int):
    """The scan at PREVIEW_WIDTH, made on first request and kept (app/services/page_previews)."""
    page = _page_or_404(slug, number)
    _image_file(page)
    data_dir = Path(current_app.config["DATA_DIR"]).resolve()
    try:
        path = page_previews.ensure_preview(data_dir, page.image_path)
    except OSError:
        abort(404, "The page image cannot be read.")
    return send_file(path, mimetype="image/jpeg", max_age=3600, conditional=True)


def _stored_scan(page: Page) -> Path | None:
    """The page's stored scan, or None when it is missing."""
    data_dir = Path(current_app.config["DATA_DIR"]).resolve()
    path = (data_dir / page.image_path).resolve()
    # The stored path comes from our own split, but never serve anything outside DATA_DIR.
    if not path.is_relative_to(data_dir) or not path.is_file():
        return None
    return path


def _scan_problem(page: Page) -> str | None:
    """Why the editor cannot show the page's scan, or None. Its preview is made here when
    it is not made yet: the viewer asks for it next anyway."""
    path = _stored_scan(page)
    if path is None:
        return "The scan of this page is missing on the server"
    try:
        page_previews.ensure_preview(
            Path(current_app.config["DATA_DIR"]).resolve(), page.image_path
        )
    except OSError:
        return "The scan of this page cannot be read (the file is damaged)"
    return None


def _image_file(page: Page) -> Path:
    path = _stored_scan(page)
    if path is None:
        abort(404, "The page image is missing.")
    return path


@bp.route("/proofing/<slug>/<int:number>/lines", methods=["POST"])
@login_required
def lines(slug: str, number: int):
    """For each line of the posted text, the index of the OCR line it stands for, or null:
    the editor asks again (debounced) after edits that add or remove lines."""
    page = _page_or_404(slug, number)
    text = request.form.get("text", "")
    if len(text) > MAX_ALIGN_CHARS:
        return jsonify(error=f"The text is longer than {MAX_ALIGN_CHARS} characters."), 413
    mapping = line_map(text.replace("\r\n", "\n"), page.ocr_boxes)
    return jsonify(lines=[m and m["line"] for m in mapping])


@bp.route("/proofing/<slug>/<int:number>/reocr", methods=["POST"])
@login_required
def reocr(slug: str, number: int):
    """Ask for the page to be OCR'd again; the editor then polls the result's URL."""
    page = _page_or_404(slug, number)
    try:
        token, warning = page_reocr.request_reocr(page)
    except page_reocr.ReocrError as exc:
        return jsonify(error=str(exc)), 422
    except QueueUnavailable:
        return jsonify(error=_REDIS_DOWN), 503
    result_url = url_for("pages.reocr_result", slug=slug, number=number, token=token)
    return jsonify(token=token, result_url=result_url, warning=warning), 202


@bp.route("/proofing/<slug>/<int:number>/reocr/<token>", methods=["POST"])
@login_required
def reocr_result(slug: str, number: int, token: str):
    """Where the request stands; when done, the diff against the posted text (the box's)."""
    page = _page_or_404(slug, number)
    try:
        result = page_reocr.reocr_result(page, token, request.form.get("text", ""))
    except QueueUnavailable:
        return jsonify(state="unavailable", error=_REDIS_DOWN), 503
    return jsonify(result.to_dict())


@bp.route("/proofing/<slug>/<int:number>/reocr/<token>/discard", methods=["POST"])
@login_required
def reocr_discard(slug: str, number: int, token: str):
    page = _page_or_404(slug, number)
    try:
        page_reocr.discard_result(page, token)
    except QueueUnavailable:
        return jsonify(error=_REDIS_DOWN), 503
    return "", 204


_REDIS_DOWN = (
    "The task queue (Redis) cannot be reached, so the page cannot be OCR'd again now. "
    "Your text is untouched; try again in a moment."
)
