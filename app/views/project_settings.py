"""The end of the project page, for its editors: following its jobs, its webhook, deleting it.

The project page includes templates/projects/_settings.html, which reads what it shows through
the template global `project_settings`, so the page's own view stays as it is.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.models import Project
from app.permissions import is_project_editor
from app.services import notifications, project_deletion, webhooks
from app.views.access import project_editor_or_403

bp = Blueprint("project_settings", __name__)


@bp.app_template_global()
def project_settings(project: Project) -> dict:
    """What the settings card of `project` shows to the signed-in user."""
    if not is_project_editor(current_user, project):
        return {"may_manage": False}
    return {
        "may_manage": True,
        "following": notifications.follows(current_user, project),
        "webhooks_enabled": bool(current_app.config["WEBHOOK_SECRET"]),
        "deliveries": webhooks.recent_deliveries(project),
    }


def _back(slug: str):
    return redirect(url_for("projects.show", slug=slug, _anchor="settings"), code=303)


@bp.route("/proofing/<slug>/follow", methods=["POST"])
@login_required
def follow(slug: str):
    project = project_editor_or_403(slug)
    on = request.form.get("notify") == "on"
    notifications.set_follow(project, current_user, on)
    if on:
        flash("You will be told here when any job of this project ends.", "info")
    else:
        flash("You will be told only of the jobs you start yourself.", "info")
    return _back(slug)


@bp.route("/proofing/<slug>/webhook", methods=["POST"])
@login_required
def webhook(slug: str):
    project = project_editor_or_403(slug)
    url = "" if request.form.get("action") == "clear" else request.form.get("url", "")
    try:
        webhooks.set_webhook(project, url)
    except webhooks.WebhookError as exc:
        flash(str(exc), "error")
        return _back(slug)
    if project.webhook_url:
        flash(f"The end of each job is now POSTed to {project.webhook_url}.", "info")
    else:
        flash("The project has no webhook now.", "info")
    return _back(slug)


@bp.route("/proofing/<slug>/delete", methods=["GET", "POST"])
@login_required
def delete(slug: str):
    project = project_editor_or_403(slug)
    if request.method == "GET":
        return render_template(
            "projects/delete.html",
            project=project,
            counts=project_deletion.what_would_go(project),
            refusal=project_deletion.refusal(project),
        )
    if request.form.get("confirm", "").strip() != project.slug:
        flash(f"Type {project.slug} to confirm the deletion.", "error")
        return redirect(url_for("project_settings.delete", slug=slug), code=303)
    try:
        report = project_deletion.delete_project(project)
    except project_deletion.ProjectDeletionError as exc:
        flash(str(exc), "error")
        return redirect(url_for("project_settings.delete", slug=slug), code=303)
    flash(f"The project {report.slug} and everything in it were deleted.", "info")
    return redirect(url_for("projects.index"), code=303)
