"""The `flask users|projects|ocr|demo` commands (app/cli.py), through Flask's CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import pypdfium2
import pytest
from sqlalchemy import func, select

from app import task_names
from app.extensions import db
from app.job_tracking import job_key
from app.models import Job, Project, User
from app.services.accounts import create_user
from tests.support import corpus, scan_pdf, split_project

# `flask ocr start` uses the tesseract engine unless told otherwise; no test here runs OCR, so
# a stand-in answers for Tesseract and none need be installed.
pytestmark = pytest.mark.usefixtures("fake_tesseract")


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def tiny_pdf(path: Path) -> Path:
    """A PDF of two small blank scans: cheap to split, enough for a job to exist."""
    return scan_pdf(path, [(200, 100)] * 2)


def ready_project(tmp_path: Path, slug: str) -> Project:
    return split_project(slug, tiny_pdf(tmp_path / "b.pdf"))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# -- users -------------------------------------------------------------------------------


def test_users_create_makes_a_proofreader_by_default(runner):
    """`users create` without --role stores a proofreader whose password checks."""
    result = runner.invoke(args=["users", "create", "zoe", "--password", "long-enough-1"])

    assert result.exit_code == 0, result.output
    assert "user zoe created (proofreader)" in result.stdout
    user = db.session.scalar(select(User).filter_by(username="zoe"))
    assert user.role == "proofreader" and user.check_password("long-enough-1")


def test_users_create_makes_a_user_with_the_role(runner):
    """`users create --role editor`, as the README says, stores an editor."""
    result = runner.invoke(
        args=["users", "create", "ann", "--role", "editor", "--password", "long-enough-1"]
    )

    assert result.exit_code == 0, result.output
    assert "user ann created (editor)" in result.stdout
    user = db.session.scalar(select(User).filter_by(username="ann"))
    assert user.role == "editor" and user.check_password("long-enough-1")


@pytest.mark.parametrize(
    ("password", "expected"), [("short", "at least 8 characters"), ("long-enough-2", "taken")]
)
def test_users_create_refuses_with_a_message(runner, password, expected):
    """A short password or a taken name exits non-zero with the reason on stderr."""
    runner.invoke(args=["users", "create", "bob", "--password", "long-enough-1"])

    result = runner.invoke(args=["users", "create", "bob", "--password", password])

    assert result.exit_code != 0
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert count(User) == 1


# -- projects ----------------------------------------------------------------------------


def test_projects_create_records_the_project_and_enqueues_its_split(runner, enqueued):
    """`projects create` on a good PDF records its page count and enqueues one split."""
    source = corpus("multipage.pdf")
    pages = len(pypdfium2.PdfDocument(str(source)))

    result = runner.invoke(args=["projects", "create", "cli-book", str(source), "--title", "A"])

    assert result.exit_code == 0, result.output
    assert f"project cli-book created: {pages} pages, split enqueued" in result.stdout
    project = db.session.scalar(select(Project).filter_by(slug="cli-book"))
    assert (project.title, project.source_page_count, project.status) == ("A", pages, "splitting")
    assert enqueued == [(task_names.SPLIT_SOURCE, {"project_id": project.id})]


def test_projects_create_refuses_an_invalid_pdf_with_one_line(runner, enqueued):
    """A broken PDF exits non-zero with a one-line reason and leaves no project."""
    result = runner.invoke(args=["projects", "create", "broken", str(corpus("invalid.pdf"))])

    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "PDF" in lines[0]
    assert "Traceback" not in result.output
    assert count(Project) == 0 and enqueued == []


def test_projects_create_refuses_a_duplicate_slug(runner, enqueued, tmp_path):
    """A slug already used exits non-zero; the first project is untouched."""
    source = str(tiny_pdf(tmp_path / "a.pdf"))
    runner.invoke(args=["projects", "create", "twice", source, "--title", "first"])

    result = runner.invoke(args=["projects", "create", "twice", source, "--title", "second"])

    assert result.exit_code != 0
    assert "already exists" in result.stderr
    assert db.session.scalars(select(Project.title)).all() == ["first"]
    assert len(enqueued) == 1


def test_private_project_and_its_members_from_the_command_line(runner, enqueued, tmp_path):
    """--private makes a private project; add-member, members and remove-member manage who
    takes part; unknown users and roles exit non-zero with one line."""
    create_user("rita", "a-long-password", "proofreader")
    source = str(tiny_pdf(tmp_path / "a.pdf"))
    assert runner.invoke(args=["projects", "create", "closed", source, "--private"]).exit_code == 0
    assert db.session.scalar(select(Project.is_private).filter_by(slug="closed")) is True

    added = runner.invoke(args=["projects", "add-member", "closed", "rita", "--role", "editor"])
    assert added.exit_code == 0, added.output
    listing = runner.invoke(args=["projects", "members", "closed"])
    assert listing.output.splitlines() == ["closed: private", "  rita (editor)"]

    assert runner.invoke(args=["projects", "remove-member", "closed", "rita"]).exit_code == 0
    assert runner.invoke(args=["projects", "members", "closed"]).output == "closed: private\n"
    again = runner.invoke(args=["projects", "remove-member", "closed", "rita"])
    assert again.exit_code != 0 and "not a member" in again.stderr
    nobody = runner.invoke(args=["projects", "add-member", "closed", "nobody"])
    assert nobody.exit_code != 0 and "no user 'nobody'" in nobody.stderr
    bad_role = runner.invoke(args=["projects", "add-member", "closed", "rita", "--role", "admin"])
    assert bad_role.exit_code != 0


@pytest.mark.parametrize("slug", ["Bad Slug", "trailing-hyphen-", "x" * 65])
def test_projects_create_refuses_a_bad_slug(runner, enqueued, tmp_path, slug):
    """A slug that is not lowercase letters, digits and hyphens is refused with the rule."""
    result = runner.invoke(args=["projects", "create", slug, str(tiny_pdf(tmp_path / "a.pdf"))])

    assert result.exit_code != 0
    assert "A slug is 1 to 64 lowercase letters" in result.stderr
    assert count(Project) == 0 and enqueued == []


# -- ocr ---------------------------------------------------------------------------------


def test_ocr_start_starts_once_and_names_the_redis_key(app, runner, enqueued, tmp_path):
    """`ocr start` starts a job and says its key; a second start reports the same job."""
    ready_project(tmp_path, "cli-ocr")
    enqueued.clear()

    first = runner.invoke(args=["ocr", "start", "cli-ocr"])
    second = runner.invoke(args=["ocr", "start", "cli-ocr", "--pages", "all"])

    assert first.exit_code == 0, first.output
    job_id = db.session.scalar(select(Job.id))
    assert first.stdout.strip() == f"job {job_id} started (redis key ocr_task:cli-ocr)"
    assert second.exit_code == 0, second.output
    assert f"job {job_id} already running" in second.stdout
    # The first window of the job's pages, sent once.
    assert enqueued == [(task_names.OCR_PAGE, {"job_id": job_id, "position": p}) for p in (0, 1)]
    assert app.extensions["redis"].get(job_key("cli-ocr")) is not None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ocr", "start", "no-such-project"], "no project 'no-such-project'"),
        (["ocr", "start", "cli-refuse", "--engine", "nope"], "Unknown OCR engine"),
        (["ocr", "start", "cli-refuse", "--lang", "xyz"], "language data is installed for xyz"),
    ],
)
def test_ocr_start_refuses_with_a_message(runner, enqueued, tmp_path, args, expected):
    """An unknown project, engine or language exits non-zero with the reason."""
    ready_project(tmp_path, "cli-refuse")

    result = runner.invoke(args=args)

    assert result.exit_code != 0
    assert expected in result.stderr
    assert count(Job) == 0


def test_ocr_status_json_parses_and_describes_the_job(runner, enqueued, tmp_path):
    """`ocr status --json` prints JSON with the running job's id, state and pages."""
    ready_project(tmp_path, "cli-status")
    runner.invoke(args=["ocr", "start", "cli-status"])

    result = runner.invoke(args=["ocr", "status", "cli-status", "--json"])

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["task_id"] == db.session.scalar(select(Job.id))
    assert (status["state"], status["total"], status["queued"], status["percent"]) == (
        "queued",
        2,
        2,
        0,
    )
    assert [p["number"] for p in status["pages"]] == [1, 2]


def test_ocr_status_summarises_in_one_line(runner, enqueued, tmp_path):
    """Without --json the status is a summary line; with no job it says so."""
    ready_project(tmp_path, "cli-summary")
    before = runner.invoke(args=["ocr", "status", "cli-summary"])
    runner.invoke(args=["ocr", "start", "cli-summary"])

    during = runner.invoke(args=["ocr", "status", "cli-summary"])

    assert before.stdout.strip() == "no batch OCR job has run for this project"
    summary, warning = during.stdout.strip().splitlines()
    assert summary == "queued: 0/2 done, 0 failed, 0 skipped, 0 running, 2 queued"
    # No worker has announced itself: the pages would wait for ever, and the status says so.
    assert warning.startswith("warning: No running worker takes tasks from the 'ocr' queue")


def test_ocr_cancel_stops_the_job_and_a_second_cancel_fails(app, runner, enqueued, tmp_path):
    """`ocr cancel` cancels the running job; with nothing running it exits non-zero."""
    ready_project(tmp_path, "cli-cancel")
    runner.invoke(args=["ocr", "start", "cli-cancel"])
    job_id = db.session.scalar(select(Job.id))

    first = runner.invoke(args=["ocr", "cancel", "cli-cancel"])
    second = runner.invoke(args=["ocr", "cancel", "cli-cancel"])

    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == f"job {job_id} cancelled: 0 pages done keep their text"
    assert db.session.get(Job, job_id).state == "cancelled"
    assert app.extensions["redis"].get(job_key("cli-cancel")) is None
    assert second.exit_code != 0
    assert "No batch OCR job is running" in second.stderr


def test_ocr_status_watch_of_a_cancelled_job_exits_non_zero(runner, enqueued, tmp_path):
    """`ocr status --watch` of a job that ended without succeeding stops at once, non-zero."""
    ready_project(tmp_path, "cli-watch")
    runner.invoke(args=["ocr", "start", "cli-watch"])
    runner.invoke(args=["ocr", "cancel", "cli-watch"])

    result = runner.invoke(args=["ocr", "status", "cli-watch", "--watch"])

    assert result.exit_code == 1
    assert "cancelled: 0/2 done" in result.stdout


# -- demo --------------------------------------------------------------------------------


def test_demo_is_idempotent(runner, enqueued):
    """A second `demo` creates nothing more: one demo editor, one demo project, one split."""
    first = runner.invoke(args=["demo"])
    second = runner.invoke(args=["demo"])

    assert first.exit_code == 0, first.output
    assert "demo editor created" in first.stdout and "demo project created" in first.stdout
    assert second.exit_code == 0, second.output
    assert second.stdout == ""
    assert db.session.scalars(select(User.username)).all() == ["demo"]
    project = db.session.scalar(select(Project).filter_by(slug="demo"))
    assert project.created_by_id == db.session.scalar(select(User.id))
    assert enqueued == [(task_names.SPLIT_SOURCE, {"project_id": project.id})]
