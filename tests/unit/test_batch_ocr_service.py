"""Batch OCR as a service (app/services/batch_ocr/, on app/services/jobs/), with fakeredis and
a recorded queue.

Projects are made the real way (create_project, then split_source called directly, rendering a
small PDF made here); pages are recognised by real Tesseract or, where the engine's behaviour is
what a test is about, by a fake engine registered under its own name.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select, update

from app import queue, task_names
from app.engines import OcrError, TransientOcrError
from app.extensions import db
from app.job_tracking import ENDED_JOB_KEYS_TTL, TRACKED, JobRecord, job_key
from app.models import BOT_USERNAME, Job, JobKind, JobPage, Page, Project, Revision
from app.services import batch_ocr, jobs
from app.services.batch_ocr import BatchOcrError
from app.services.pages import save_page_text
from tests.support import BOTH_DATABASES, add_ready_project, new_project, split_project

FONT = "/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf"
WORDS = ["Alpha river", "Bravo mountain", "Charlie forest", "Delta harbour"]
STATUS_FIELDS = {
    "state",
    "total",
    "done",
    "failed",
    "running",
    "queued",
    "percent",
    "eta_seconds",
    "engine",
    "task_id",
    "started_at",
    "finished_at",
    "pages",
}


def make_pdf(path: Path, pages: int) -> Path:
    """A PDF of `pages` small scans at 150 DPI, page n showing WORDS[n]."""
    font = ImageFont.truetype(FONT, 40) if Path(FONT).exists() else ImageFont.load_default(40)
    images = []
    for words in WORDS[:pages]:
        image = Image.new("L", (600, 150), 255)
        ImageDraw.Draw(image).text((30, 45), words, font=font, fill=0)
        images.append(image)
    images[0].save(path, save_all=True, append_images=images[1:], resolution=150)
    return path


def make_project(tmp_path: Path, slug: str, pages: int = 3, *, split: bool = True) -> Project:
    """A project created from a fresh PDF and, unless `split` is False, split into pages."""
    source = make_pdf(tmp_path / f"{slug}.pdf", pages)
    return split_project(slug, source) if split else new_project(slug, source)


def start(project: Project, selection: str = "unedited", engine: str = "fake", **kwargs):
    return batch_ocr.start_batch_ocr(
        project,
        engine=engine,
        language=kwargs.pop("language", None),
        selection=selection,
        user=kwargs.pop("user", None),
    )


def pages_sent(enqueued) -> list[dict]:
    return [kwargs for name, kwargs in enqueued if name == task_names.OCR_PAGE]


KEYS = TRACKED[JobKind.OCR]


def tracker(app):
    return app.extensions["job_trackers"][JobKind.OCR]


def job_pages(job_id: str) -> list[JobPage]:
    return list(
        db.session.scalars(select(JobPage).filter_by(job_id=job_id).order_by(JobPage.position))
    )


def page(project: Project, number: int) -> Page:
    return db.session.scalar(select(Page).filter_by(project_id=project.id, number=number))


def run_all(job_id: str) -> list[batch_ocr.PageOutcome]:
    return [batch_ocr.run_page(job_id, p.position) for p in job_pages(job_id)]


def redis(app):
    return app.extensions["redis"]


# -- starting ----------------------------------------------------------------------------


@BOTH_DATABASES
def test_start_records_the_job_and_sends_the_first_window(app, enqueued, tmp_path, fake_engine):
    """Start writes ocr_task:<slug> with a TTL, a Job with one row per page, and sends the
    first pages: as many as the window holds (2 with no worker known), not the whole book."""
    project = make_project(tmp_path, "start-records")

    outcome = start(project)

    assert outcome.started
    record = JobRecord.from_json(redis(app).get(job_key("start-records")))
    assert (record.task_id, record.total, record.engine) == (outcome.job_id, 3, "fake")
    assert 0 < redis(app).ttl(job_key("start-records")) <= app.config["OCR_JOB_TTL"]
    job = db.session.get(Job, outcome.job_id)
    assert (job.state, job.total, job.engine, job.language) == ("queued", 3, "fake", "eng")
    assert [(p.position, p.page_id, p.state) for p in job_pages(job.id)] == [
        (i, page(project, i + 1).id, "queued") for i in range(3)
    ]
    assert pages_sent(enqueued) == [{"job_id": outcome.job_id, "position": p} for p in (0, 1)]
    assert tracker(app).progress_of(record).states_raw == b"qqw"


@BOTH_DATABASES
def test_second_start_returns_the_running_job(app, enqueued, tmp_path, fake_engine):
    """A second start while a job runs returns that job, started=False, and enqueues nothing."""
    project = make_project(tmp_path, "second-start")
    first = start(project)
    sent = len(enqueued)

    second = start(project, selection="all")

    assert (second.job_id, second.started) == (first.job_id, False)
    assert len(enqueued) == sent
    assert db.session.scalars(select(Job)).all() == [db.session.get(Job, first.job_id)]


@pytest.mark.parametrize(
    ("engine", "language", "selection", "expected"),
    [
        ("no-such-engine", None, "unedited", "Unknown OCR engine"),
        ("tesseract", "xyz", "unedited", "language data is installed for xyz"),
        ("tesseract", "eng; rm -rf", "unedited", "A language is a Tesseract code"),
        ("google", None, "unedited", "GOOGLE_APPLICATION_CREDENTIALS is not set"),
        ("tesseract", None, "failed", "No pages match"),
        ("tesseract", None, "resume", "no interrupted or cancelled job"),
        ("tesseract", None, "every-other", "Unknown page selection"),
    ],
)
def test_start_refuses_with_a_reason_and_leaves_nothing(
    app, enqueued, tmp_path, fake_tesseract, engine, language, selection, expected
):
    """A start that cannot be done says why, and writes no key, no job and no task."""
    app.config["GOOGLE_APPLICATION_CREDENTIALS"] = None
    app.config["GOOGLE_VISION_ENDPOINT"] = None
    project = make_project(tmp_path, "refused", pages=2)
    enqueued.clear()

    with pytest.raises(BatchOcrError, match=expected):
        start(project, selection=selection, engine=engine, language=language)

    assert redis(app).get(job_key("refused")) is None
    assert db.session.scalars(select(Job)).all() == []
    assert enqueued == []


def test_start_refuses_a_project_still_splitting(app, enqueued, tmp_path, fake_engine):
    """The pages of a project being split cannot be OCRed yet."""
    project = make_project(tmp_path, "still-splitting", split=False)

    with pytest.raises(BatchOcrError, match="not ready yet"):
        start(project)

    assert redis(app).get(job_key("still-splitting")) is None
    assert pages_sent(enqueued) == []


def test_start_leaves_nothing_when_the_queue_is_down(
    app, enqueued, tmp_path, fake_engine, monkeypatch
):
    """If the first pages cannot be sent, no record, no Job and no JobPage remain."""
    project = make_project(tmp_path, "queue-down")
    recorded = queue.send_page

    def unavailable(task_name, **kwargs):
        raise queue.QueueUnavailable("connection refused")

    monkeypatch.setattr(queue, "send_page", unavailable)

    with pytest.raises(queue.QueueUnavailable):
        start(project)

    assert redis(app).get(job_key("queue-down")) is None
    assert db.session.scalars(select(Job)).all() == []
    assert db.session.scalars(select(JobPage)).all() == []
    for key in redis(app).scan_iter("ocr_job:*"):
        assert 0 < redis(app).ttl(key) <= ENDED_JOB_KEYS_TTL, key
    monkeypatch.setattr(queue, "send_page", recorded)
    assert start(project).started  # the failed start did not leave the slug taken


# -- page selections ---------------------------------------------------------------------


def selected_numbers(project: Project, outcome) -> list[int]:
    return [p.page.number for p in job_pages(outcome.job_id)]


def test_selection_unedited_leaves_out_pages_saved_by_a_person(
    app, enqueued, tmp_path, fake_engine, editor
):
    """'unedited' covers the pages no person has saved; 'all' covers every page."""
    project = make_project(tmp_path, "unedited")
    second = page(project, 2)
    assert save_page_text(second, editor, "by hand", second.version).saved

    unedited = start(project, selection="unedited")
    assert selected_numbers(project, unedited) == [1, 3]
    batch_ocr.cancel_batch_ocr(project)

    everything = start(project, selection="all")
    assert selected_numbers(project, everything) == [1, 2, 3]


def test_selection_failed_covers_only_pages_whose_ocr_failed(app, enqueued, tmp_path, fake_engine):
    """'failed' re-runs exactly the pages whose last OCR failed."""
    project = make_project(tmp_path, "failed-only")
    fake_engine.answers = {2: OcrError("smudged")}
    run_all(start(project).job_id)

    retry = start(project, selection="failed")

    assert selected_numbers(project, retry) == [2]


def test_resume_after_interruption_runs_only_pages_without_a_result(
    app, enqueued, tmp_path, fake_engine, fake_tesseract
):
    """Resume takes the interrupted job's engine and language and its unfinished pages only."""
    project = make_project(tmp_path, "resume", pages=4)
    fake_engine.answers = {2: OcrError("smudged")}
    first = start(project, language="eng")
    batch_ocr.run_page(first.job_id, 0)
    batch_ocr.run_page(first.job_id, 1)
    redis(app).delete(job_key("resume"))  # Redis lost the record: the job is interrupted
    assert batch_ocr.watch_jobs() == 1
    assert db.session.get(Job, first.job_id).state == "interrupted"

    resumed = start(project, selection="resume", engine="tesseract", language="hin")

    assert selected_numbers(project, resumed) == [3, 4]
    job = db.session.get(Job, resumed.job_id)
    assert (job.engine, job.language, job.selection) == ("fake", "eng", "resume")


@BOTH_DATABASES
@pytest.mark.parametrize("stamped_ms", [+5, -6])
def test_a_page_a_straggler_of_the_resumed_job_finished_is_not_recognised_again(
    app, enqueued, tmp_path, fake_engine, stamped_ms
):
    """Redis lost the job while one of its tasks was mid-page; that task writes the page after
    resume chose its pages. The resumed job counts the page done and writes no second
    revision, also when the straggler's revision is stamped a few ms before the resumed job
    started (it takes its time before it commits: seen in `make chaos`, fault 3b)."""
    project = make_project(tmp_path, "straggler", pages=3)
    first = start(project, language="eng")
    batch_ocr.run_page(first.job_id, 0)
    redis(app).delete(job_key("straggler"))
    assert batch_ocr.watch_jobs() == 1
    resumed = start(project, selection="resume")
    assert selected_numbers(project, resumed) == [2, 3]

    # The straggler of the first job finishes page 2 now, as its task would.
    first_job = db.session.get(Job, first.job_id)
    straggler_page = db.session.get(JobPage, (first.job_id, 1))
    batch_ocr.save_revision(first_job, straggler_page, straggler_page.page, "page two", [])
    started = db.session.get(Job, resumed.job_id).started_at
    db.session.execute(
        update(Revision)
        .filter_by(job_id=first.job_id, page_id=straggler_page.page_id)
        .values(created_at=started + timedelta(milliseconds=stamped_ms))
    )
    db.session.commit()

    assert batch_ocr.run_page(resumed.job_id, 0).outcome == "done"
    assert batch_ocr.run_page(resumed.job_id, 1).outcome == "done"
    by_job = dict(
        db.session.execute(
            select(Revision.job_id, func.count(Revision.id))
            .join(Page, Revision.page_id == Page.id)
            .filter(Page.project_id == project.id, Page.number == 2)
            .group_by(Revision.job_id)
        ).all()
    )
    assert by_job == {first.job_id: 1}, "page 2 was recognised twice"
    assert page(project, 2).text == "page two"
    assert [p.state for p in job_pages(resumed.job_id)] == ["done", "done"]
    assert page(project, 3).ocr_state == "done"  # the page nobody had run, run by the resume


# -- one page ----------------------------------------------------------------------------


@pytest.mark.integration  # runs real Tesseract
def test_run_page_with_tesseract_writes_one_revision_and_is_idempotent(
    app, enqueued, tmp_path, monkeypatch
):
    """Real Tesseract: one bot revision, the page's text, boxes and version; a rerun is a no-op."""
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")
    project = make_project(tmp_path, "tesseract-page", pages=2)
    outcome = start(project, engine="tesseract")

    first = batch_ocr.run_page(outcome.job_id, 0)

    assert first.outcome == "done", first.reason
    db.session.expire_all()
    first_page = page(project, 1)
    assert "alpha" in first_page.text.lower()
    assert first_page.ocr_boxes and all(box[0] in first_page.text for box in first_page.ocr_boxes)
    assert (first_page.version, first_page.ocr_state) == (1, "done")
    revisions = db.session.scalars(select(Revision).filter_by(page_id=first_page.id)).all()
    assert len(revisions) == 1
    assert revisions[0].author.username == BOT_USERNAME
    assert (revisions[0].job_id, revisions[0].text) == (outcome.job_id, first_page.text)
    text = first_page.text

    again = batch_ocr.run_page(outcome.job_id, 0)

    db.session.expire_all()
    assert again.outcome == "done"
    assert (page(project, 1).version, page(project, 1).text) == (1, text)
    assert db.session.scalars(select(Revision).filter_by(page_id=first_page.id)).all() == revisions
    assert batch_ocr.job_status(project).done == 1


def test_page_saved_by_a_person_after_start_is_skipped_and_kept(
    app, enqueued, tmp_path, fake_engine, editor
):
    """A page a person saved after the job began keeps its text; the page is skipped, with why."""
    project = make_project(tmp_path, "edited-meanwhile", pages=2)
    outcome = start(project)
    target = page(project, 1)
    assert save_page_text(target, editor, "checked by hand", target.version).saved

    result = batch_ocr.run_page(outcome.job_id, 0)

    assert result.outcome == "skipped"
    assert "edited by a person" in result.reason
    db.session.expire_all()
    assert page(project, 1).text == "checked by hand"
    assert fake_engine.calls == []
    row = job_pages(outcome.job_id)[0]
    assert (row.state, row.reason) == ("skipped", result.reason)
    status = batch_ocr.job_status(project)
    assert status.skipped == 1
    assert status.pages[0] == {"number": 1, "state": "skipped", "reason": result.reason}


def test_engine_error_fails_the_page_and_the_job_still_ends(app, enqueued, tmp_path, fake_engine):
    """An OcrError fails that page with its reason; the other pages run and the job ends."""
    project = make_project(tmp_path, "engine-error")
    fake_engine.answers = {2: OcrError("the scan is unreadable")}
    outcome = start(project)

    results = run_all(outcome.job_id)

    assert [r.outcome for r in results] == ["done", "failed", "done"]
    assert results[1].reason == "the scan is unreadable"
    db.session.expire_all()
    assert (page(project, 2).ocr_state, page(project, 2).ocr_error) == (
        "failed",
        "the scan is unreadable",
    )
    job = db.session.get(Job, outcome.job_id)
    assert (job.state, job.done, job.failed) == ("partially_failed", 2, 1)
    assert redis(app).get(job_key("engine-error")) is None


def test_transient_error_is_raised_for_a_retry_unless_final(app, enqueued, tmp_path, fake_engine):
    """TransientOcrError goes back to the task for a retry; on the final attempt the page fails."""
    project = make_project(tmp_path, "transient", pages=1)
    fake_engine.answers = {1: TransientOcrError("rate limited")}
    outcome = start(project)

    with pytest.raises(TransientOcrError):
        batch_ocr.run_page(outcome.job_id, 0, final_attempt=False)
    assert job_pages(outcome.job_id)[0].state == "queued"
    assert redis(app).get(job_key("transient")) is not None

    result = batch_ocr.run_page(outcome.job_id, 0, final_attempt=True)

    assert result.outcome == "failed"
    assert "rate limited" in result.reason and "after retries" in result.reason
    assert db.session.get(Job, outcome.job_id).state == "failed"


@pytest.mark.parametrize(
    ("answers", "state", "counts"),
    [
        ({}, "succeeded", (3, 0)),
        ({3: OcrError("torn page")}, "partially_failed", (2, 1)),
        ({n: OcrError("blank scan") for n in (1, 2, 3)}, "failed", (0, 3)),
    ],
)
def test_last_page_ends_the_job(app, enqueued, tmp_path, fake_engine, answers, state, counts):
    """When the last page finishes the key is gone and the job has its final state and counts."""
    project = make_project(tmp_path, "last-page")
    fake_engine.answers = answers
    outcome = start(project)

    run_all(outcome.job_id)

    assert redis(app).get(job_key("last-page")) is None
    job = db.session.get(Job, outcome.job_id)
    assert (job.state, (job.done, job.failed), job.skipped) == (state, counts, 0)
    assert job.finished_at is not None
    assert redis(app).ttl(KEYS.pages_key(outcome.job_id)) <= ENDED_JOB_KEYS_TTL


# -- cancel ------------------------------------------------------------------------------


def test_cancel_stops_queued_pages_and_keeps_done_ones(app, enqueued, tmp_path, fake_engine):
    """Cancel marks the queued pages cancelled and clears the key; done pages keep their text."""
    project = make_project(tmp_path, "cancelled")
    outcome = start(project)
    batch_ocr.run_page(outcome.job_id, 0)

    job = batch_ocr.cancel_batch_ocr(project)

    assert (job.id, job.state, job.done) == (outcome.job_id, "cancelled", 1)
    assert [p.state for p in job_pages(outcome.job_id)] == ["done", "cancelled", "cancelled"]
    assert redis(app).get(job_key("cancelled")) is None
    assert page(project, 1).text == "text of page 1"
    late = batch_ocr.run_page(outcome.job_id, 1)  # a task already in the queue
    assert late.outcome == "not run"
    assert fake_engine.calls == [1]
    with pytest.raises(BatchOcrError, match="No batch OCR job is running"):
        batch_ocr.cancel_batch_ocr(project)


# -- records that name no live job ------------------------------------------------------


@BOTH_DATABASES
def test_a_record_naming_an_unknown_job_is_cleared(app, enqueued, tmp_path):
    """A record whose job is not in the database is cleared; the status is the form's."""
    project = make_project(tmp_path, "ghost-record")
    ghost = JobRecord(
        task_id="ghost",
        engine="tesseract",
        started_at="2024-01-01T00:00:00",
        project_slug="ghost-record",
        total=3,
    )
    assert tracker(app).claim(ghost) is None

    assert batch_ocr.current_job(project) is None
    assert redis(app).get(job_key("ghost-record")) is None
    assert batch_ocr.job_status(project) == jobs.NO_JOB


@BOTH_DATABASES
def test_a_corrupt_record_is_deleted_and_status_still_works(app, enqueued, tmp_path, fake_engine):
    """A corrupt record is deleted; the status then shows the last job, and a start works."""
    project = make_project(tmp_path, "corrupt-record", pages=2)
    first = start(project)
    run_all(first.job_id)
    redis(app).set(job_key("corrupt-record"), b"\x00not a record")

    status = batch_ocr.job_status(project)

    assert (status.state, status.task_id, status.done) == ("succeeded", first.job_id, 2)
    assert redis(app).get(job_key("corrupt-record")) is None
    assert start(project, selection="all").started


# -- lost jobs ---------------------------------------------------------------------------


def test_a_job_without_progress_for_too_long_is_interrupted(app, enqueued, tmp_path, fake_engine):
    """No progress for longer than OCR_STALL_TIMEOUT: the job is interrupted and its key cleared."""
    project = make_project(tmp_path, "stalled")
    outcome = start(project)
    batch_ocr.run_page(outcome.job_id, 0)
    record = tracker(app).current("stalled")
    stall = app.config["OCR_STALL_TIMEOUT"]
    job = db.session.get(Job, outcome.job_id)

    progress_key = KEYS.progress_key(outcome.job_id)
    redis(app).hset(progress_key, "last_progress", time.time() - stall + 30)
    assert batch_ocr.check_running_job(job, tracker(app).progress_of(record)) is True
    assert job.state == "running"

    redis(app).hset(progress_key, "last_progress", time.time() - stall - 30)
    assert batch_ocr.check_running_job(job, tracker(app).progress_of(record)) is False

    db.session.expire_all()
    job = db.session.get(Job, outcome.job_id)
    assert (job.state, job.done) == ("interrupted", 1)
    assert redis(app).get(job_key("stalled")) is None
    assert batch_ocr.job_status(project).state == "interrupted"
    assert "no page started, finished or beat" in batch_ocr.job_status(project).message


def test_a_job_whose_key_vanished_is_interrupted(app, enqueued, tmp_path, fake_engine):
    """A live job in the database whose Redis record is gone is marked interrupted."""
    project = make_project(tmp_path, "vanished")
    outcome = start(project)
    redis(app).delete(job_key("vanished"))

    status = batch_ocr.job_status(project)

    assert db.session.get(Job, outcome.job_id).state == "interrupted"
    assert (status.state, status.task_id) == ("interrupted", outcome.job_id)
    assert batch_ocr.watch_jobs() == 0


# -- status ------------------------------------------------------------------------------


@BOTH_DATABASES
def test_status_has_every_field_and_percent_reaches_100_only_at_the_end(app, enqueued, fake_engine):
    """The status JSON has all its fields; percent is a whole 0-100, 100 only when all finished."""
    project = add_ready_project("percent", 200, images=False)
    outcome = start(project)
    record = tracker(app).current("percent")

    queued = batch_ocr.job_status(project).to_dict()
    assert STATUS_FIELDS <= set(queued)
    assert (queued["state"], queued["percent"], queued["queued"], queued["total"]) == (
        "queued",
        0,
        200,
        200,
    )
    assert queued["eta_seconds"] is None and queued["finished_at"] is None

    tracker(app).mark_running(record, 0, "worker-a")
    for position in range(1, 200):
        tracker(app).finish_page(record, position, "done")
    running = batch_ocr.job_status(project).to_dict()
    assert STATUS_FIELDS <= set(running)
    assert (running["state"], running["done"], running["running"]) == ("running", 199, 1)
    assert running["percent"] == 99
    # One page left after 199 finished at once: under a second, said as 1 s, never 0.
    assert running["eta_seconds"] == 1
    assert len(running["pages"]) == 200
    assert running["pages"][0] == {"number": 1, "state": "running"}

    # The database side of those 199 pages, as run_page would have written it.
    db.session.execute(
        update(JobPage)
        .where(JobPage.job_id == outcome.job_id, JobPage.position > 0)
        .values(state="done")
    )
    db.session.commit()
    # Its image is missing; the same worker takes the page over from its own heartbeat.
    assert batch_ocr.run_page(outcome.job_id, 0, worker="worker-a").outcome == "failed"
    ended = json.loads(json.dumps(batch_ocr.job_status(project).to_dict()))
    assert STATUS_FIELDS <= set(ended)
    assert (ended["state"], ended["percent"], ended["failed"]) == ("partially_failed", 100, 1)
    assert ended["finished_at"] is not None and ended["task_id"] == outcome.job_id
    for status in (queued, running, ended):
        assert isinstance(status["percent"], int) and 0 <= status["percent"] <= 100


def test_status_started_at_is_when_the_start_was_asked_for_in_utc(
    app, enqueued, tmp_path, fake_engine
):
    """The live status says when the job was started, as an ISO time with its UTC offset,
    between the clock readings taken around the start, and the same once the job has ended."""
    project = make_project(tmp_path, "started-at", pages=1)
    before = datetime.now(UTC)
    outcome = start(project)
    after = datetime.now(UTC)

    live = batch_ocr.job_status(project)
    run_all(outcome.job_id)
    ended = batch_ocr.job_status(project)

    started = datetime.fromisoformat(live.started_at)
    assert started.utcoffset() == timedelta(0)
    assert before <= started <= after
    assert (live.task_id, live.engine, live.state) == (outcome.job_id, "fake", "queued")
    assert (ended.started_at, ended.state) == (live.started_at, "succeeded")


def test_live_page_entries_follow_every_change_of_state_and_reason(app, enqueued, fake_engine):
    """Polls of a running job show each page's state and reason as Redis has them, however
    often they are asked for, and an earlier answer is never changed afterwards."""
    project = add_ready_project("reuse", 50, images=False)
    start(project)
    record = tracker(app).current("reuse")

    first = batch_ocr.job_status(project)
    assert batch_ocr.job_status(project).pages == first.pages

    tracker(app).mark_running(record, 3, "worker-a")
    running = batch_ocr.job_status(project)
    assert running.pages[3] == {"number": 4, "state": "running"}
    assert (running.running, running.queued) == (1, 49)
    assert first.pages[3] == {"number": 4, "state": "queued"}, "an earlier answer was changed"

    tracker(app).finish_page(record, 3, "failed", "the scan is unreadable")
    failed = batch_ocr.job_status(project)
    assert failed.pages[3] == {
        "number": 4,
        "state": "failed",
        "reason": "the scan is unreadable",
    }
    assert (failed.failed, failed.running) == (1, 0)
    assert running.pages[3] == {"number": 4, "state": "running"}, "an earlier answer was changed"


def count_round_trips(monkeypatch, client) -> list[int]:
    """Count what the client sends to the server: one call per command or pipeline."""
    sent = [0]
    connection_class = client.connection_pool.connection_class
    original = connection_class.send_packed_command

    def counting(self, command, *args, **kwargs):
        sent[0] += 1
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(connection_class, "send_packed_command", counting)
    return sent


def test_a_status_poll_costs_the_same_redis_round_trips_for_10_and_2000_pages(
    app, enqueued, fake_engine, monkeypatch
):
    """The path a poll takes (job_status: the record, then the job's pages, counters and
    reasons) reads a 2000-page job in as many round trips as a 10-page one: two, once the
    workers' presence is cached."""
    small = add_ready_project("small", 10, images=False)
    large = add_ready_project("large", 2000, images=False)
    for project in (small, large):
        start(project)
        record = tracker(app).current(project.slug)
        for position in range(0, record.total, 3):
            tracker(app).finish_page(record, position, "failed", f"page {position}")
    # The presence of workers is read once and cached for a moment (2 s); held for the whole
    # test, so that a slow machine does not add a presence read to one of the polls measured.
    monkeypatch.setattr(app.extensions["worker_presence"], "cache_seconds", 3600.0)
    batch_ocr.job_status(small)
    sent = count_round_trips(monkeypatch, redis(app))

    trips = {}
    for project in (small, large):
        sent[0] = 0
        status = batch_ocr.job_status(project)
        trips[status.total] = sent[0]
        assert len(status.pages) == status.total
        assert status.failed == len(range(0, status.total, 3))

    assert trips[10] == trips[2000] == 2
