"""Command-line interface: `flask users|projects|ocr|cleanup|demo ...`, thin calls into the
services."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import select

from app import ROOT
from app.exports import FORMATS
from app.extensions import db
from app.job_tracking import job_key
from app.models import ItemState, JobKind, JobState, MemberRole, Project, ProjectStatus, Role, User
from app.queue import QueueUnavailable
from app.services import batch_ocr, exports, jobs, project_deletion, retention, webhooks
from app.services.accounts import AccountError, create_user, user_named
from app.services.api_tokens import issue_token, revoke_tokens
from app.services.batch_ocr import SELECTIONS, BatchOcrError
from app.services.jobs import JobStatus
from app.services.jobs.history import FilterError, JobFilter, list_jobs, with_live_counts
from app.services.projects import (
    ProjectError,
    create_project,
    pages_split,
    remove_member,
    set_member,
)
from app.sources import Upload

DEMO_USER = ("demo", "demo-password")
DEMO_PDF = ROOT / "tests" / "fixtures" / "corpus" / "multipage.pdf"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _project(slug: str) -> Project:
    project = db.session.scalar(select(Project).filter_by(slug=slug))
    if project is None:
        _fail(f"no project {slug!r}")
    return project


users = click.Group("users", help="Manage user accounts.")


@users.command("create")
@click.argument("username")
@click.option(
    "--role", type=click.Choice([role.value for role in Role]), default=Role.PROOFREADER.value
)
@click.password_option()
def users_create(username: str, role: str, password: str) -> None:
    """Create a user."""
    try:
        create_user(username, password, role)
    except AccountError as exc:
        _fail(str(exc))
    click.echo(f"user {username} created ({role})")


@users.command("token")
@click.argument("username")
def users_token(username: str) -> None:
    """Make an API token for USERNAME; the token is the last line printed, shown only once."""
    token = issue_token(_user(username))
    click.echo(f"API token for {username} (send it as 'Authorization: Bearer <token>'):")
    click.echo(token)


@users.command("revoke-tokens")
@click.argument("username")
def users_revoke_tokens(username: str) -> None:
    """Revoke every API token of USERNAME."""
    count = revoke_tokens(_user(username))
    click.echo(f"{count} token{'' if count == 1 else 's'} of {username} revoked")


projects = click.Group("projects", help="Create and inspect projects.")


@projects.command("create")
@click.argument("slug")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--title", default="", help="Book title (default: the slug).")
@click.option("--lang", "language", default="eng", show_default=True, help="OCR language code.")
@click.option("--private", is_flag=True, help="Only members (add-member) and admins see it.")
@click.option(
    "--detect-orientation",
    is_flag=True,
    help="Turn pages scanned sideways or upside down upright (Tesseract OSD, ~1 s a page).",
)
@click.option("--ocr", is_flag=True, help="OCR every page as soon as it is prepared.")
@click.option("--engine", default="tesseract", show_default=True, help="With --ocr: the engine.")
@click.option(
    "--wait", is_flag=True, help="Follow the split (and the OCR) to the end; non-zero on failure."
)
def projects_create(
    slug: str,
    sources: tuple[Path, ...],
    title: str,
    language: str,
    private: bool,
    detect_orientation: bool,
    ocr: bool,
    engine: str,
    wait: bool,
) -> None:
    """Create project SLUG from SOURCES and enqueue its split (with --ocr, and its OCR).

    SOURCES is a scanned PDF, a multi-page TIFF, a ZIP of page images, one or more page
    images, or a folder of page images; page images go in natural file-name order.
    """
    uploads: list[Upload] = []
    for source in sources:
        if source.is_dir():
            # Named with their folder, so that two folders' pages do not interleave.
            for path in _folder_files(source):
                uploads.append(Upload(f"{source.name}/{path.name}", path))
        else:
            uploads.append(Upload(source.name, source))
    fields = {
        "slug": slug,
        "title": title,
        "language": language,
        "uploads": uploads,
        "created_by": None,
        "private": private,
        "detect_orientation": detect_orientation,
    }
    try:
        if ocr:
            project = batch_ocr.create_project_with_ocr(engine=engine, ocr_language=None, **fields)
        else:
            project = create_project(**fields)
    except (ProjectError, BatchOcrError, QueueUnavailable) as exc:
        _fail(str(exc))
    click.echo(f"project {slug} created: {project.source_page_count} pages, split enqueued")
    if ocr:
        click.echo(f"batch OCR starts with each page (redis key {job_key(slug)})")
    if not wait:
        return
    if ocr:
        _watch(project)
        return
    shown = -1
    while True:
        db.session.refresh(project)
        done, total = pages_split(project), project.source_page_count or 0
        if project.status == ProjectStatus.FAILED:
            _fail(project.status_message or "the split failed")
        if project.status == ProjectStatus.READY:
            click.echo(f"project {slug} ready: {done} pages")
            return
        if done != shown:
            click.echo(f"splitting: {done}/{total} pages")
            shown = done
        time.sleep(0.5)


def _folder_files(folder: Path) -> list[Path]:
    """The files of a folder given as a book, hidden ones (.DS_Store...) left out."""
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    if not files:
        _fail(f"the folder {folder} holds no files")
    return files


def _user(username: str) -> User:
    user = user_named(username)
    if user is None:
        _fail(f"no user {username!r}")
    return user


@projects.command("add-member")
@click.argument("slug")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice([role.value for role in MemberRole]),
    default=MemberRole.PROOFREADER.value,
    show_default=True,
)
def projects_add_member(slug: str, username: str, role: str) -> None:
    """Make USERNAME a member of project SLUG (or change their role in it)."""
    try:
        set_member(_project(slug), _user(username), role)
    except ProjectError as exc:
        _fail(str(exc))
    click.echo(f"{username} is a member of {slug} ({role})")


@projects.command("remove-member")
@click.argument("slug")
@click.argument("username")
def projects_remove_member(slug: str, username: str) -> None:
    """Remove USERNAME from the members of project SLUG."""
    if not remove_member(_project(slug), _user(username)):
        _fail(f"{username} is not a member of {slug}")
    click.echo(f"{username} is no longer a member of {slug}")


@projects.command("members")
@click.argument("slug")
def projects_members(slug: str) -> None:
    """List the members of project SLUG, and whether it is private."""
    project = _project(slug)
    click.echo(f"{slug}: {'private' if project.is_private else 'public'}")
    for member in sorted(project.members, key=lambda m: m.user.username):
        click.echo(f"  {member.user.username} ({member.role})")


ocr = click.Group("ocr", help="Batch OCR: start, follow and cancel jobs.")


@ocr.command("start")
@click.argument("slug")
@click.option("--engine", default="tesseract", show_default=True)
@click.option("--lang", "language", default=None, help="Override the project's language.")
@click.option(
    "--pages",
    "selection",
    type=click.Choice([*SELECTIONS, "resume"]),
    default="unedited",
    show_default=True,
)
@click.option("--wait", is_flag=True, help="Follow the job to its end.")
def ocr_start(slug: str, engine: str, language: str | None, selection: str, wait: bool) -> None:
    """Start batch OCR of project SLUG."""
    project = _project(slug)
    try:
        outcome = batch_ocr.start_batch_ocr(
            project, engine=engine, language=language, selection=selection, user=None
        )
    except (BatchOcrError, QueueUnavailable) as exc:
        _fail(str(exc))
    verb = "started" if outcome.started else "already running"
    click.echo(f"job {outcome.job_id} {verb} (redis key {job_key(slug)})")
    if wait:
        _watch(project)


@ocr.command("status")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print the status JSON.")
@click.option("--watch", is_flag=True, help="Show a progress bar until the job ends.")
def ocr_status(slug: str, as_json: bool, watch: bool) -> None:
    """Show the batch OCR status of project SLUG."""
    project = _project(slug)
    if watch:
        _watch(project)
        return
    try:
        status = batch_ocr.job_status(project)
    except QueueUnavailable as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(status.to_dict(), indent=2))
    else:
        click.echo(_summary_line(status))
        if status.warning:
            click.echo(f"warning: {status.warning}")
        _echo_failures(status)


@ocr.command("cancel")
@click.argument("slug")
def ocr_cancel(slug: str) -> None:
    """Cancel the running batch OCR job of project SLUG."""
    try:
        job = batch_ocr.cancel_batch_ocr(_project(slug))
    except (BatchOcrError, QueueUnavailable) as exc:
        _fail(str(exc))
    click.echo(f"job {job.id} cancelled: {job.done} pages done keep their text")


@ocr.command("jobs")
@click.option("--project", "slug", default=None, help="Only the jobs of this project.")
@click.option("--state", default=None, help="Only jobs in this state (e.g. running, failed).")
@click.option("--limit", default=20, show_default=True, help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
def ocr_jobs(slug: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """List batch OCR jobs, running ones first, then newest first."""
    try:
        found = list_jobs(
            None,
            JobFilter(project=slug, state=state, kind=JobKind.OCR),
            per_page=limit,
            running_first=True,
            everything=True,
        )
    except FilterError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps([with_live_counts(job) for job in found.jobs], indent=2))
        return
    if not found.jobs:
        click.echo("no batch OCR jobs")
    for job in found.jobs:
        row = with_live_counts(job)
        click.echo(
            f"{job.id}  {row['project']:<20} {row['state']:<16} {job.engine}/{job.language}  "
            f"{row['done']}/{row['total']} done, {row['failed']} failed  "
            f"{job.started_at:%Y-%m-%d %H:%M} by {row['started_by'] or 'command line'}"
        )


def _summary_line(status: JobStatus) -> str:
    if status.state == "none":
        return "no batch OCR job has run for this project"
    line = (
        f"{status.state}: {status.done}/{status.total} done, {status.failed} failed, "
        f"{status.skipped} skipped"
    )
    if status.is_live:
        line += f", {status.running} running, {status.queued} queued"
        if status.preparing:
            line += f", {status.preparing} being prepared"
        if status.eta_seconds is not None:
            line += f", about {status.eta_seconds} s left"
    return line


def _echo_failures(status: JobStatus) -> None:
    for page in status.pages:
        if page["state"] == ItemState.FAILED:
            click.echo(f"  page {page['number']}: {page.get('reason', '')}")


def _watch(project: Project, kind: JobKind = JobKind.OCR) -> JobStatus:
    """A terminal progress bar until the project's job of `kind` ends; exits non-zero unless
    it succeeded. Returns its last status."""
    width = 30
    interactive = sys.stdout.isatty()
    shown = ""
    warned = None
    while True:
        db.session.expire_all()
        try:
            status = (
                batch_ocr.job_status(project)
                if kind == JobKind.OCR
                else jobs.job_status(project, kind)
            )
        except QueueUnavailable as exc:
            _fail(str(exc))
        filled = width * status.percent // 100
        line = f"[{'#' * filled}{'-' * (width - filled)}] {status.percent:3d}% "
        line += _summary_line(status)
        if status.warning and status.warning != warned:
            click.echo(("\n" if interactive else "") + f"warning: {status.warning}")
        warned = status.warning
        if interactive:
            click.echo(f"\r{line}\033[K", nl=False)
        elif line != shown:  # in a log, one line per change rather than one per second
            click.echo(line)
        shown = line
        if not status.is_live:
            if interactive:
                click.echo()
            _echo_failures(status)
            if status.state not in (JobState.SUCCEEDED, "none"):
                _fail(_why_not_succeeded(status))
            return status
        time.sleep(1)


def _why_not_succeeded(status: JobStatus) -> str:
    """One line saying how a job ended, for the exit of --wait."""
    if status.message:
        return f"the job ended {status.state.replace('_', ' ')}: {status.message}"
    return (
        f"the job ended {status.state.replace('_', ' ')}: {status.done} of {status.total} "
        f"pages done, {status.failed} failed"
    )


@projects.command("export")
@click.argument("slug")
@click.option(
    "--format",
    "format_name",
    type=click.Choice(list(FORMATS)),
    default=None,
    help="File format (required unless --resume).",
)
@click.option(
    "--min-status",
    type=click.Choice(list(exports.MIN_STATUSES)),
    default=None,
    help="Only pages at or above this status (not-relevant pages left out); default: all.",
)
@click.option(
    "--resume", is_flag=True, help="Resume the last export, interrupted or failed, instead."
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the file.",
)
def projects_export(
    slug: str, format_name: str | None, min_status: str | None, resume: bool, out: Path
) -> None:
    """Export project SLUG to FILE (--out), following the export to its end.

    A file kept from an earlier export of the same pages is copied at once.
    """
    project = _project(slug)
    if format_name is None and not resume:
        _fail(f"give --format ({', '.join(FORMATS)}), or --resume")
    if not out.parent.is_dir():
        _fail(f"the folder {out.parent} does not exist")
    try:
        if resume:
            outcome = exports.resume_export(project, user=None)
        else:
            outcome = exports.start_export(
                project, format_name=format_name or "", min_status=min_status, user=None
            )
    except (exports.ExportError, QueueUnavailable) as exc:
        _fail(str(exc))
    if outcome.kept is None:
        verb = "started" if outcome.started else "already running, joined"
        click.echo(f"export {outcome.job_id} {verb} (redis key {job_key(slug, JobKind.EXPORT)})")
        _watch(project, JobKind.EXPORT)
        db.session.expire_all()
    made = outcome.kept or exports.export_of(outcome.job_id)
    found = exports.download(project, made.id) if made else None
    if found is None:
        _fail("the export ended but its file is not kept (removed by the clean-up?)")
    try:
        shutil.copyfile(found.path, out)
    except OSError as exc:
        _fail(f"could not write {out}: {exc.strerror or exc}")
    unchanged = " (unchanged since the kept file was made)" if outcome.kept else ""
    click.echo(f"wrote {out}: {found.path.stat().st_size} bytes, {found.content_type}{unchanged}")


@projects.command("webhook")
@click.argument("slug")
@click.argument("url", required=False)
@click.option("--clear", is_flag=True, help="Remove the project's webhook.")
def projects_webhook(slug: str, url: str | None, clear: bool) -> None:
    """Set the URL that project SLUG's job ends are POSTed to (or --clear it)."""
    project = _project(slug)
    if clear == bool(url):
        _fail("give either a URL or --clear")
    try:
        webhooks.set_webhook(project, None if clear else url)
    except webhooks.WebhookError as exc:
        _fail(str(exc))
    click.echo(f"webhook of {slug}: {project.webhook_url or 'none'}")


@projects.command("delete")
@click.argument("slug")
@click.confirmation_option(prompt="Delete the project with all its pages, text and jobs?")
def projects_delete(slug: str) -> None:
    """Delete project SLUG: its rows, files and Redis keys (refused while a job runs)."""
    try:
        report = project_deletion.delete_project(_project(slug))
    except (project_deletion.ProjectDeletionError, QueueUnavailable) as exc:
        _fail(str(exc))
    click.echo(report.summary())


@click.command("cleanup")
@click.option("--dry-run", is_flag=True, help="Print what would be removed; remove nothing.")
def cleanup(dry_run: bool) -> None:
    """Remove old staged uploads, expired export files and old per-page job rows."""
    removed = retention.clean_up(dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for removal in removed:
        click.echo(f"{verb} {removal}")
    things = f"{len(removed)} {'thing' if len(removed) == 1 else 'things'}"
    click.echo(f"{things} would be removed" if dry_run else f"{things} removed")


@click.command("demo")
def demo() -> None:
    """Create the demo editor and the demo project (idempotent)."""
    user = db.session.scalar(select(User).filter_by(username=DEMO_USER[0]))
    if user is None:
        user = create_user(DEMO_USER[0], DEMO_USER[1], Role.EDITOR)
        click.echo(f"demo editor created: {DEMO_USER[0]} / {DEMO_USER[1]}")
    if db.session.scalar(select(Project.id).filter_by(slug="demo")) is None:
        with DEMO_PDF.open("rb") as fh:
            create_project(
                slug="demo",
                title="Demo: six scanned pages (public domain)",
                language="eng",
                source=fh,
                filename=DEMO_PDF.name,
                created_by=user,
            )
        click.echo("demo project created from tests/fixtures/corpus/multipage.pdf")


def register_commands(app: Flask) -> None:
    for command in (users, projects, ocr, cleanup, demo):
        app.cli.add_command(command)
