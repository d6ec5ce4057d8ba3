"""The web server under faults, over real HTTP: gunicorn killed and restarted mid-job, and two
editors clicking Start on the same project at the same instant.

The app is served by gunicorn in its own process group (`WebServer`); users are `requests`
sessions that sign in and post forms with their CSRF token, as a browser without JavaScript.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from app import processes
from app.extensions import db
from app.models import Job, JobState, Project, Role
from app.services import batch_ocr
from app.services.accounts import create_user
from tests.chaos import BOOK_PAGES, record_result, revisions_per_page
from tests.support import (
    HttpUser,
    WebServer,
    make_ready_project,
    multipage_pdf,
    split_project,
    wait_for,
)

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

PASSWORD = "editor-password"
START_FORM = {"engine": "tesseract", "pages": "all"}
RUNNING = ("queued", "running")


def make_editors(*names: str) -> None:
    for name in names:
        create_user(name, PASSWORD, Role.EDITOR)


def test_web_server_killed_mid_job_shows_progress_again_after_restart(own_stack, tmp_path):
    """gunicorn SIGKILLed mid-job and started again: the signed-in user's session still works,
    the progress page shows the running job, and the status JSON advances to the end."""
    stack = own_stack()
    stack.start_worker(concurrency=1)  # a job long enough to outlive the restart
    book = BOOK_PAGES * 2
    with stack.app.app_context():
        project = make_ready_project("web-restart", multipage_pdf(tmp_path / "b.pdf", book))
        slug, project_id = project.slug, project.id
        make_editors("web-editor")
    web = WebServer(stack.config, tmp_path / "web.log").start()
    try:
        user = HttpUser(web.url, "web-editor", PASSWORD)
    except BaseException:
        web.stop()
        raise
    try:
        response = user.post_form(f"/proofing/{slug}/batch-ocr", START_FORM)
        assert response.status_code == 303, response.text[:500]
        status_url = f"/proofing/{slug}/batch-ocr/status"
        before = wait_for(
            lambda: (s := user.get(status_url).json())["done"] >= 1 and s,
            120,
            "a page done",
        )
        web.kill()
        killed = time.monotonic()
        with pytest.raises(requests.ConnectionError):
            user.get(status_url)
        web.start()
        back = time.monotonic() - killed

        page = user.get(f"/proofing/{slug}/batch-ocr")
        assert page.status_code == 200
        assert "Batch OCR in progress" in page.text, page.text[:2000]
        assert before["task_id"] in page.text
        seen = [user.get(status_url).json()]
        assert seen[0]["state"] in RUNNING, seen[0]

        def ended():
            seen.append(user.get(status_url).json())
            return seen[-1]["state"] not in RUNNING

        wait_for(ended, 240, "the status JSON to reach the end", 0.5)
    finally:
        user.close()
        web.stop()
    done = [s["done"] for s in seen]
    assert done == sorted(done), done
    assert seen[-1]["state"] == "succeeded", seen[-1]
    assert (seen[-1]["done"], seen[-1]["percent"]) == (len(book), 100)
    with stack.app.app_context():
        per_page = revisions_per_page(project_id, before["task_id"])
    assert set(per_page.values()) == {1}, per_page
    record_result(
        "4. web server SIGKILL",
        "gunicorn (master and 2 workers) killed mid-job and started again on the same port",
        f"while down, requests were refused; after restart the same session cookie worked, the "
        f"progress page showed the running job at {seen[0]['percent']}% and the status JSON "
        f"advanced {seen[0]['done']} -> {seen[-1]['done']} of {len(book)} pages to "
        f"'{seen[-1]['state']}'; the job itself never noticed",
        f"kill to first answer {back:.1f} s (gunicorn start-up)",
    )


ROUNDS = 100


def test_two_editors_starting_at_the_same_instant_make_one_job(own_stack, tmp_path):
    """Two editors post Start on the same project at the same instant, 100 times over HTTP
    (gunicorn, 2 processes x 4 threads): every round makes exactly one job."""
    stack = own_stack()  # no worker: each job stays queued until the round cancels it
    with stack.app.app_context():
        # No worker: split here.
        project = split_project("double-start", multipage_pdf(tmp_path / "b.pdf", [3]))
        slug, project_id = project.slug, project.id
        make_editors("alice", "bob")
    web = WebServer(stack.config, tmp_path / "web.log").start()
    extra_jobs: list[int] = []
    codes: set[tuple[int, int]] = set()
    started = time.monotonic()
    users: list[HttpUser] = []
    try:
        users += [HttpUser(web.url, name, PASSWORD) for name in ("alice", "bob")]
        with ThreadPoolExecutor(2) as pool:
            for round_number in range(1, ROUNDS + 1):
                barrier = threading.Barrier(2)

                def click(user: HttpUser, barrier=barrier) -> int:
                    barrier.wait(timeout=10)
                    return user.post_form(f"/proofing/{slug}/batch-ocr", START_FORM).status_code

                a, b = (future.result(60) for future in [pool.submit(click, u) for u in users])
                codes.add((a, b))
                with stack.app.app_context():
                    jobs = db.session.scalar(
                        select(func.count(Job.id)).filter_by(project_id=project_id)
                    )
                    made = jobs - round_number - sum(extra_jobs)
                    if made > 1:
                        extra_jobs.append(made - 1)
                    cancel = users[0].post_form(f"/proofing/{slug}/batch-ocr/cancel", {})
                    assert cancel.status_code == 303, cancel.text[:500]
                    # A second job the race let through has no record left: end it too, so
                    # the next round starts from a clean project.
                    for job in db.session.scalars(
                        select(Job).where(
                            Job.project_id == project_id,
                            Job.state.in_((JobState.QUEUED, JobState.RUNNING)),
                        )
                    ).all():
                        batch_ocr.end_job(job.id, state=JobState.CANCELLED)
                    assert batch_ocr.current_job(db.session.get(Project, project_id)) is None
    finally:
        for user in users:
            user.close()
        web.stop()
    seconds = time.monotonic() - started
    assert codes == {(303, 303)}, codes
    assert extra_jobs == [], f"{len(extra_jobs)} of {ROUNDS} rounds started two jobs"
    record_result(
        "7. double start",
        f"two editors POST Start at the same instant (threading.Barrier), {ROUNDS} rounds, "
        f"{' '.join(processes.WEB[:-1])}, each round cancelled",
        f"responses {sorted(codes)}; rounds that made two jobs: {len(extra_jobs)} of {ROUNDS}",
        f"{ROUNDS} rounds in {seconds:.0f} s",
    )
