"""The JSON API: jobs (`GET /api/jobs`, `GET /api/jobs/<task_id>`) and pages
(`GET /api/projects/<slug>/pages/<n>`).

Signed in with a session or `Authorization: Bearer <token>` (app/services/api_tokens.py); a
request with neither gets 401. A user sees only the jobs of projects they may see: a job of a
private project they are not a member of is a 404, like a job that does not exist; so is a
page of such a project.
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request, url_for
from flask_login import current_user, login_required

from app.services import jobs
from app.services.history import revision_count
from app.services.jobs.history import (
    FilterError,
    JobFilter,
    job_visible_to,
    list_jobs,
    with_live_counts,
)
from app.text.alignment import line_map, ocr_lines
from app.views.access import page_or_404

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.route("/jobs")
@login_required
def job_list():
    args = request.args
    try:
        found = list_jobs(
            current_user,
            JobFilter(
                project=args.get("project") or None,
                state=args.get("state") or None,
                engine=args.get("engine") or None,
                started_by=args.get("started_by") or None,
                kind=args.get("kind") or None,
            ),
            page=args.get("page", 1, type=int),
            per_page=args.get("per_page", 20, type=int),
            running_first=True,
        )
    except FilterError as exc:
        abort(400, str(exc))
    return _no_store(
        jsonify(
            jobs=[_with_url(with_live_counts(job)) for job in found.jobs],
            page=found.page,
            per_page=found.per_page,
            total=found.total,
            pages=found.pages,
        )
    )


@bp.route("/jobs/<task_id>")
@login_required
def job_detail(task_id: str):
    job = job_visible_to(current_user, task_id)
    if job is None:
        abort(404, f"There is no job {task_id!r}.")
    # The fields of .../batch-ocr/status (every page's outcome and reason among them), and
    # what a list entry says besides.
    detail = {**with_live_counts(job), **jobs.status_of(job).to_dict()}
    return _no_store(jsonify(_with_url(detail)))


@bp.route("/projects/<slug>/pages/<int:number>")
@login_required
def page_detail(slug: str, number: int):
    """A page as a script needs it: its text and level, the OCR lines with their boxes (in
    the image's pixels: left, top, width, height), and which OCR line each text line is."""
    page = page_or_404(slug, number)
    lines = ocr_lines(page.ocr_boxes)
    return _no_store(
        jsonify(
            project=page.project.slug,
            number=page.number,
            status=page.status,
            version=page.version,
            text=page.text,
            width=page.width,
            height=page.height,
            revisions=revision_count(page),
            ocr_lines=[
                {
                    "text": line.text,
                    "box": [
                        line.box[0],
                        line.box[1],
                        line.box[2] - line.box[0],
                        line.box[3] - line.box[1],
                    ],
                }
                for line in lines
            ],
            line_map=line_map(page.text, page.ocr_boxes) if lines else [],
            image_url=url_for("pages.image", slug=slug, number=number, _external=True),
        )
    )


def _with_url(summary: dict) -> dict:
    if summary["kind"] == "ocr":
        summary["url"] = url_for(
            "batch_ocr.job", slug=summary["project"], task_id=summary["task_id"], _external=True
        )
    elif summary["kind"] == "replace":
        summary["url"] = url_for("search.progress", slug=summary["project"], _external=True)
    elif summary["kind"] == "export":
        summary["url"] = url_for("exports.page", slug=summary["project"], _external=True)
    return summary


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response
