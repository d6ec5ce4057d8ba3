"""Webhooks against real processes: a job's end delivered by a real Celery worker to a local
receiver (http.server on loopback), signed; retried with backoff after a 503; a redirect not
followed; the connection made to the address that was checked; and the refusals of loopback
when WEBHOOK_ALLOW_PRIVATE is not set, at delivery and on the real command line."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.extensions import db
from app.models import Job, JobState, Project, WebhookDelivery, utcnow
from app.services import job_events, webhooks
from tests.support import ROOT, RedisServer, Stack, add_ready_project, wait_for

pytestmark = pytest.mark.integration

SECRET = "integration-webhook-secret"


class Receiver:
    """A webhook receiver on loopback that answers each POST with the next scripted status."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_GET(self) -> None:  # noqa: N802 -- a followed redirect would land here
                receiver.requests.append({"path": self.path, "method": "GET"})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reset(self, *answers: tuple[int, dict[str, str]]) -> None:
        self.requests.clear()
        self.answers[:] = list(answers)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hook_stack(tmp_path_factory):
    """A stack of its own (its own redis-server, so no other worker takes its tasks) whose
    worker may reach loopback and signs with SECRET."""
    root = tmp_path_factory.mktemp("webhooks")
    server = RedisServer(root / "redis").start()
    stack = Stack(root, server, WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE="1")
    try:
        stack.start_worker()
        yield stack
    finally:
        stack.stop()
        server.stop()


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def hook_app(hook_stack):
    with hook_stack.app.app_context():
        yield hook_stack.app
        db.session.remove()


def ended_job(app, slug: str, url: str) -> Job:
    add_ready_project(slug, 2)
    project = db.session.query(Project).filter_by(slug=slug).one()
    webhooks.set_webhook(project, url)
    job = Job(
        id=f"{slug}-job",
        project_id=project.id,
        engine="tesseract",
        language="eng",
        selection="all",
        state=JobState.PARTIALLY_FAILED,
        started_at=utcnow() - timedelta(minutes=2),
        finished_at=utcnow(),
        total=2,
        done=1,
        failed=1,
    )
    db.session.add(job)
    db.session.commit()
    return job


def delivery_of(job_id: str, state: str | None = None, timeout: float = 30) -> WebhookDelivery:
    def settled():
        db.session.expire_all()
        delivery = db.session.query(WebhookDelivery).filter_by(job_id=job_id).one()
        return delivery if delivery.state != "pending" or state == "pending" else None

    return wait_for(settled, timeout, f"the webhook delivery of {job_id}", interval=0.2)


def test_a_jobs_end_is_posted_by_the_worker_signed_with_the_secret(hook_app, receiver):
    receiver.reset()
    job = ended_job(hook_app, "hook-signed", receiver.url("/in?from=ocr"))
    job_events.job_ended(job)

    delivery = delivery_of(job.id)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.last_error is None
    (request,) = receiver.requests
    assert request["path"] == "/in?from=ocr"
    headers = request["headers"]
    expected = "sha256=" + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Signature-256"], expected)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Webhook-Event"] == "job.ended"
    assert headers["X-Webhook-Delivery"] == str(delivery.id)
    payload = json.loads(request["body"])
    assert {k: payload[k] for k in ("event", "project", "task_id", "state")} == {
        "event": "job.ended",
        "project": "hook-signed",
        "task_id": job.id,
        "state": "partially_failed",
    }
    assert (payload["total"], payload["done"], payload["failed"], payload["skipped"]) == (
        2,
        1,
        1,
        0,
    )
    assert payload["started_at"].endswith("Z") and payload["finished_at"].endswith("Z")
    assert payload["url"].endswith(f"/proofing/hook-signed/batch-ocr/jobs/{payload['task_id']}")
    assert request["body"] == delivery.body.encode()


def test_a_503_is_retried_with_backoff_and_every_attempt_is_recorded(hook_app, receiver):
    receiver.reset((503, {}), (200, {}))
    job = ended_job(hook_app, "hook-retried", receiver.url())
    job_events.job_ended(job)

    delivery = delivery_of(job.id, timeout=60)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
    first, second = receiver.requests
    assert first["body"] == second["body"]
    assert first["headers"]["X-Signature-256"] == second["headers"]["X-Signature-256"]


def test_a_redirect_is_not_followed(hook_app, receiver):
    receiver.reset((302, {"Location": receiver.url("/elsewhere")}))
    job = ended_job(hook_app, "hook-redirected", receiver.url())
    job_events.job_ended(job)

    delivery = delivery_of(job.id)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("failed", 1, 302)
    assert f"redirect to {receiver.url('/elsewhere')} not followed" in delivery.last_error
    assert [r["path"] for r in receiver.requests] == ["/hook"]


def test_the_connection_goes_to_the_checked_address_whatever_the_name(hook_app, receiver):
    """The name is resolved once, checked, and that address is connected to: the Host header
    still names the host. (rebind.invalid resolves nowhere: a second lookup would fail.)"""
    receiver.reset()
    job = ended_job(hook_app, "hook-pinned", receiver.url())
    delivery = WebhookDelivery(
        project_id=job.project_id,
        job_id=job.id,
        url=f"http://rebind.invalid:{receiver.port}/pinned",
        event="job.ended",
        body="{}",
    )
    job.project.webhook_url = delivery.url
    db.session.add(delivery)
    db.session.commit()
    state = webhooks.deliver(
        delivery.id, final_attempt=True, resolve=lambda host, port: ["127.0.0.1"]
    )
    assert state == "delivered"
    (request,) = receiver.requests
    assert request["headers"]["Host"] == f"rebind.invalid:{receiver.port}"


def test_without_allow_private_a_loopback_receiver_is_never_reached(hook_app, receiver):
    receiver.reset()
    job = ended_job(hook_app, "hook-refused", receiver.url())
    delivery = WebhookDelivery(
        project_id=job.project_id, job_id=job.id, url=receiver.url(), event="job.ended", body="{}"
    )
    db.session.add(delivery)
    db.session.commit()
    hook_app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    try:
        assert webhooks.deliver(delivery.id, final_attempt=False) == "failed"
    finally:
        hook_app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    db.session.expire_all()
    assert (
        "127.0.0.1, a loopback address" in db.session.get(WebhookDelivery, delivery.id).last_error
    )
    assert receiver.requests == []


def test_the_command_line_refuses_a_loopback_url_without_allow_private(hook_stack, receiver):
    env = {
        **os.environ,
        **hook_stack.config,
        "WEBHOOK_ALLOW_PRIVATE": "",
        "FLASK_APP": "app",
    }
    with hook_stack.app.app_context():
        add_ready_project("hook-cli-refused", 1)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flask",
            "projects",
            "webhook",
            "hook-cli-refused",
            f"http://localhost:{receiver.port}/hook",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "error: The host localhost resolves to" in result.stderr
    assert "a loopback address" in result.stderr
