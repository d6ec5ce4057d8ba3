"""Projects: the list, creating one from an upload, and the project page with its pages."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.extensions import db
from app.models import MemberRole, PageStatus, Project, ProjectStatus, User
from app.permissions import is_project_editor, visible_projects
from app.services import batch_ocr, progress
from app.services.projects import (
    ProjectError,
    add_member_by_name,
    create_project,
    pages_split,
    remove_member,
    set_private,
)
from app.sources import Upload
from app.views.access import editor_required, project_editor_or_403, project_or_404

bp = Blueprint("projects", __name__)


@bp.route("/")
def home():
    return redirect(url_for("projects.index"))


@bp.route("/proofing/")
@login_required
def index():
    projects = db.session.scalars(visible_projects(current_user)).all()
    return render_template("projects/index.html", projects=projects)


@bp.route("/proofing/create-project", methods=["GET", "POST"])
@editor_required
def create():
    engines = batch_ocr.engine_choices()
    if request.method == "GET":
        # OCR from the upload is on by default wherever an engine can run.
        ready = [e["name"] for e in engines if not e["unavailable"]]
        form = {"ocr": "on", "engine": ready[0]} if ready else {}
        return render_template("projects/create.html", form=form, engines=engines)
    form = request.form
    files = [f for f in request.files.getlist("source") if f.filename]
    if not files:
        flash("Choose a PDF, a ZIP, or one or more page images to upload.", "error")
        return render_template("projects/create.html", form=form, engines=engines), 400
    fields = {
        "slug": form.get("slug", "").strip(),
        "title": form.get("title", ""),
        "language": form.get("language", "eng").strip(),
        "uploads": [Upload(f.filename, f.stream) for f in files],
        "created_by": current_user,
        "private": form.get("private") == "on",
        "detect_orientation": form.get("detect_orientation") == "on",
    }
    with_ocr = form.get("ocr") == "on"
    try:
        if with_ocr:
            project = batch_ocr.create_project_with_ocr(
                engine=form.get("engine", ""), ocr_language=None, **fields
            )
        else:
            project = create_project(**fields)
    except (ProjectError, batch_ocr.BatchOcrError) as exc:
        flash(str(exc), "error")
        return render_template("projects/create.html", form=form, engines=engines), 400
    if with_ocr:
        flash(
            f"Project {project.slug!r} created; each page is OCR'd as soon as it is ready.",
            "info",
        )
        return redirect(url_for("batch_ocr.page", slug=project.slug))
    flash(f"Project {project.slug!r} created; its pages are being prepared.", "info")
    return redirect(url_for("projects.show", slug=project.slug))


@bp.route("/proofing/<slug>/")
@login_required
def show(slug: str):
    project = project_or_404(slug)
    wanted = request.args.get("status") or None
    try:
        status = PageStatus(wanted) if wanted else None
    except ValueError:
        flash(f"{wanted!r} is not a page status; showing every page.", "error")
        status = None
    counts = progress.status_counts(project)
    pages = progress.page_list(
        project,
        status,
        page=request.args.get("page", 1, type=int),
        total=counts.count(status) if status else counts.total,
    )
    return render_template(
        "projects/show.html",
        project=project,
        may_manage=is_project_editor(current_user, project),
        roles=[role.value for role in MemberRole],
        split=split_state(project),
        last_job=batch_ocr.latest_job_summary(project),
        counts=counts,
        page_list=pages,
    )


@bp.route("/proofing/<slug>/next-needs-work")
@login_required
def next_needs_work(slug: str):
    """The editor of the next page that needs work after `after` (from the start of the book
    by default), for a proofreader going through it."""
    project = project_or_404(slug)
    number = progress.next_needing_work(project, request.args.get("after", 0, type=int))
    if number is None:
        flash("No page needs work: every page is proofread or not relevant.", "info")
        return redirect(url_for("projects.show", slug=slug))
    return redirect(url_for("pages.edit", slug=slug, number=number))


@bp.route("/proofing/<slug>/members", methods=["POST"])
@login_required
def add_member(slug: str):
    project = project_editor_or_403(slug)
    username, role = request.form.get("username", ""), request.form.get("role", "")
    try:
        add_member_by_name(project, username, role)
        flash(f"{username.strip()} is a member of this project ({role}).", "info")
    except ProjectError as exc:
        flash(str(exc), "error")
    return redirect(url_for("projects.show", slug=slug, _anchor="members"), code=303)


@bp.route("/proofing/<slug>/visibility", methods=["POST"])
@login_required
def visibility(slug: str):
    project = project_editor_or_403(slug)
    private = request.form.get("private") == "on"
    set_private(project, private)
    if private:
        flash("The project is private: only its members and admins see it.", "info")
    else:
        flash("The project is public: every signed-in user sees it.", "info")
    return redirect(url_for("projects.show", slug=slug, _anchor="members"), code=303)


@bp.route("/proofing/<slug>/members/<int:user_id>/remove", methods=["POST"])
@login_required
def remove_member_view(slug: str, user_id: int):
    project = project_editor_or_403(slug)
    user = db.session.get(User, user_id)
    if user is not None and remove_member(project, user):
        flash(f"{user.username} is no longer a member of this project.", "info")
    return redirect(url_for("projects.show", slug=slug, _anchor="members"), code=303)


@bp.route("/proofing/<slug>/split-status")
@login_required
def split_status(slug: str):
    return jsonify(split_state(project_or_404(slug)))


def split_state(project: Project) -> dict:
    done = pages_split(project)
    total = project.source_page_count or 0
    return {
        "status": project.status,
        "message": project.status_message,
        "pages_done": done,
        "pages_total": total,
        "percent": 100
        if project.status == ProjectStatus.READY
        else (done * 100 // total if total else 0),
    }
