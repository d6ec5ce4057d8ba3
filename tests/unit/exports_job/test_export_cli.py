"""`flask projects export` (app/cli.py): it follows the export, writes the file, and exits
non-zero with one line saying why when it cannot."""

from __future__ import annotations

import pytest

from app import cli
from app.exports.text import PlainText
from app.services import exports


@pytest.fixture
def runner(app, run_tasks, monkeypatch):
    """The CLI runner; while the command waits, the recorded tasks run, as a worker would."""

    def wait(_seconds):
        run_tasks()

    monkeypatch.setattr(cli.time, "sleep", wait)
    return app.test_cli_runner()


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_export_follows_the_job_and_writes_the_file(runner, book, tmp_path):
    book(slug="cli-book", pages=3)
    out = tmp_path / "book.txt"
    result = runner.invoke(
        args=["projects", "export", "cli-book", "--format", "txt", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "export_task:cli-book" in result.stdout
    assert "100%" in result.stdout
    assert out.read_text().count("=== page") == 3
    assert f"wrote {out}" in result.stdout


def test_an_unchanged_export_is_copied_from_the_kept_file(runner, book, tmp_path):
    book(slug="cli-kept", pages=2, statuses=["proofread-once", "needs-work"])
    args = ["projects", "export", "cli-kept", "--format", "txt-zip", "--min-status"]
    first = runner.invoke(args=[*args, "proofread-once", "--out", str(tmp_path / "a.zip")])
    assert first.exit_code == 0, first.output
    again = runner.invoke(args=[*args, "proofread-once", "--out", str(tmp_path / "b.zip")])
    assert again.exit_code == 0, again.output
    assert "unchanged since the kept file was made" in again.stdout
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_a_failed_export_exits_non_zero_with_the_reason(runner, book, tmp_path, monkeypatch):
    book(slug="cli-fail", pages=2)

    def broken(self, page, meta):
        raise OSError("disk on fire")

    monkeypatch.setattr(PlainText, "render_part", broken)
    out = tmp_path / "never.txt"
    result = runner.invoke(
        args=["projects", "export", "cli-fail", "--format", "txt", "--out", str(out)]
    )
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "failed" in line and "could not be exported" in line and "disk on fire" in line
    assert not out.exists()


def test_another_export_running_is_one_line_naming_it(runner, app, book, tmp_path, enqueued):
    project = book(slug="cli-busy", pages=2)
    exports.start_export(project, format_name="txt-zip", min_status=None, user=None)
    result = runner.invoke(
        args=["projects", "export", "cli-busy", "--format", "txt", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 1
    assert "An export (Plain text (ZIP, a file per page) of every page)" in one_error_line(result)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["no-such", "--format", "txt"], "no project 'no-such'"),
        (["cli-bad"], "give --format"),
        (["cli-bad", "--format", "txt", "--min-status", "proofread-twice"], "No page is at or"),
        (["cli-bad", "--resume"], "no interrupted, cancelled or failed export"),
    ],
)
def test_refusals_are_one_line_and_non_zero(runner, book, tmp_path, args, expected):
    book(slug="cli-bad", pages=1)
    result = runner.invoke(args=["projects", "export", *args, "--out", str(tmp_path / "f")])
    assert result.exit_code == 1
    assert expected in one_error_line(result)


def test_a_format_not_offered_is_refused_by_its_choices(runner, book, tmp_path):
    book(slug="cli-fmt", pages=1)
    result = runner.invoke(
        args=["projects", "export", "cli-fmt", "--format", "docx", "--out", str(tmp_path / "f")]
    )
    assert result.exit_code == 2
    assert "'txt'" in result.stderr and "'txt-zip'" in result.stderr


def test_an_out_folder_that_does_not_exist_is_refused(runner, book, tmp_path):
    book(slug="cli-out", pages=1)
    out = tmp_path / "missing" / "f.txt"
    result = runner.invoke(
        args=["projects", "export", "cli-out", "--format", "txt", "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "does not exist" in one_error_line(result)
