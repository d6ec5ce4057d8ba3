"""Setting a project's webhook (page and CLI), what a job's end records and sends, and the check
made again at delivery. The real delivery, through a worker to a receiver, is in
tests/integration/test_webhooks.py."""

from __future__ import annotations

import json
import socket

import pytest

from app import task_names
from app.extensions import db
from app.models import JobState, Project, WebhookDelivery
from app.services import job_events, webhooks
from tests.support import add_ready_project, csrf_token, make_job
from tests.unit.ops import client_of, ready_project


def project_named(slug: str) -> Project:
    return db.session.query(Project).filter_by(slug=slug).one()


def post_webhook(client, slug: str, **form):
    token = csrf_token(client, f"/proofing/{slug}/")
    return client.post(f"/proofing/{slug}/webhook", data={**form, "csrf_token": token})


def test_editors_set_and_remove_the_webhook_on_the_project_page(web, users):
    ready_project(web, "hook-page")
    edna = client_of(web, "edna")
    refused = post_webhook(edna, "hook-page", url="http://127.0.0.1:9/hook", action="set")
    assert refused.status_code == 303
    page = edna.get("/proofing/hook-page/").get_data(as_text=True)
    assert "The host 127.0.0.1 resolves to 127.0.0.1, a loopback address" in page
    with web.app_context():
        assert project_named("hook-page").webhook_url is None

    web.config["WEBHOOK_ALLOW_PRIVATE"] = True
    post_webhook(edna, "hook-page", url="http://127.0.0.1:9/hook", action="set")
    page = edna.get("/proofing/hook-page/").get_data(as_text=True)
    assert 'value="http://127.0.0.1:9/hook"' in page
    with web.app_context():
        assert project_named("hook-page").webhook_url == "http://127.0.0.1:9/hook"

    post_webhook(edna, "hook-page", url="http://127.0.0.1:9/hook", action="clear")
    with web.app_context():
        assert project_named("hook-page").webhook_url is None

    pat = client_of(web, "pat")
    assert post_webhook(pat, "hook-page", url="https://x.org/", action="set").status_code == 403
    assert "Webhook" not in pat.get("/proofing/hook-page/").get_data(as_text=True)


def test_the_card_says_webhooks_are_off_without_a_secret(web, users):
    ready_project(web, "no-secret")
    web.config["WEBHOOK_SECRET"] = None
    page = client_of(web, "edna").get("/proofing/no-secret/").get_data(as_text=True)
    assert "Webhooks are off on this server" in page


def test_the_cli_sets_refuses_and_clears_a_webhook(app):
    add_ready_project("hook-cli", 1)
    runner = app.test_cli_runner()
    app.config["WEBHOOK_SECRET"] = "cli-secret"
    refused = runner.invoke(args=["projects", "webhook", "hook-cli", "http://localhost:8000/"])
    assert refused.exit_code == 1
    assert "error: The host localhost resolves to" in refused.output
    assert "WEBHOOK_ALLOW_PRIVATE=1" in refused.output
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    made = runner.invoke(args=["projects", "webhook", "hook-cli", "http://localhost:8000/in"])
    assert made.exit_code == 0, made.output
    assert "webhook of hook-cli: http://localhost:8000/in" in made.output
    both = runner.invoke(args=["projects", "webhook", "hook-cli", "http://x/", "--clear"])
    assert both.exit_code == 1 and "either a URL or --clear" in both.output
    cleared = runner.invoke(args=["projects", "webhook", "hook-cli", "--clear"])
    assert "webhook of hook-cli: none" in cleared.output
    db.session.expire_all()
    assert project_named("hook-cli").webhook_url is None


def test_a_jobs_end_records_one_delivery_with_the_payload_and_sends_it(web, enqueued):
    ready_project(web, "hook-end")
    web.config.update(WEBHOOK_ALLOW_PRIVATE=True, PUBLIC_URL="https://proofing.example.org")
    with web.app_context():
        project = project_named("hook-end")
        project.webhook_url = "http://127.0.0.1:9/hook"
        job = make_job(
            project, state=JobState.PARTIALLY_FAILED, outcomes=["done", "failed", "skipped"]
        )
        job_events.job_ended(job)
        job_events.job_ended(job)
        (delivery,) = db.session.query(WebhookDelivery).all()
        assert enqueued == [(task_names.DELIVER_WEBHOOK, {"delivery_id": delivery.id})]
        assert (delivery.state, delivery.attempts, delivery.url) == (
            "pending",
            0,
            project.webhook_url,
        )
        body = json.loads(delivery.body)
        assert body == {
            "delivery_id": delivery.id,
            "event": "job.ended",
            "kind": "ocr",
            "project": "hook-end",
            "task_id": job.id,
            "state": "partially_failed",
            "total": 3,
            "done": 1,
            "failed": 1,
            "skipped": 1,
            "started_at": job.started_at.isoformat(timespec="seconds") + "Z",
            "finished_at": job.finished_at.isoformat(timespec="seconds") + "Z",
            "url": f"https://proofing.example.org/proofing/hook-end/batch-ocr/jobs/{job.id}",
        }


def test_the_signature_is_the_hmac_sha256_of_the_body():
    # The value from GitHub's webhook documentation, which signs the same way.
    assert (
        webhooks.sign(b"Hello, World!", "It's a Secret to Everybody")
        == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


@pytest.fixture
def no_connections(monkeypatch):
    """Fail the test if anything opens a TCP connection."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a connection was opened: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)


def pending_delivery(url: str) -> int:
    project = db.session.query(Project).one()
    project.webhook_url = url
    delivery = WebhookDelivery(project_id=project.id, url=url, event="job.ended", body="{}")
    db.session.add(delivery)
    db.session.commit()
    return delivery.id


def test_delivery_checks_the_name_again_and_refuses_a_rebound_private_address(web, no_connections):
    """Public when set, 127.0.0.1 when delivered: refused without connecting, not retried."""
    ready_project(web, "rebound")
    with web.app_context():
        delivery_id = pending_delivery("https://hooks.example.org/x")
        state = webhooks.deliver(
            delivery_id,
            final_attempt=False,
            resolve=lambda host, port: ["127.0.0.1"],
        )
        delivery = db.session.get(WebhookDelivery, delivery_id)
        assert state == "failed"
        assert delivery.attempts == 1
        assert "resolves to 127.0.0.1, a loopback address" in delivery.last_error
        assert delivery.finished_at is not None


def test_a_name_that_stops_resolving_is_retried_then_failed(web, no_connections):
    ready_project(web, "gone-dns")
    with web.app_context():
        delivery_id = pending_delivery("https://hooks.example.org/x")

        def nothing(host, port):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        with pytest.raises(webhooks.WebhookRetry):
            webhooks.deliver(delivery_id, final_attempt=False, resolve=nothing)
        assert db.session.get(WebhookDelivery, delivery_id).state == "pending"
        assert webhooks.deliver(delivery_id, final_attempt=True, resolve=nothing) == "failed"
        delivery = db.session.get(WebhookDelivery, delivery_id)
        assert delivery.attempts == 2
        assert "does not resolve" in delivery.last_error
        # A redelivered task finds it finished and sends nothing.
        assert webhooks.deliver(delivery_id, final_attempt=True, resolve=nothing) == "failed"
        assert db.session.get(WebhookDelivery, delivery_id).attempts == 2


def test_a_delivery_for_a_url_since_changed_is_not_sent(web, no_connections):
    ready_project(web, "changed-url")
    with web.app_context():
        delivery_id = pending_delivery("https://hooks.example.org/old")
        db.session.query(Project).one().webhook_url = "https://hooks.example.org/new"
        db.session.commit()
        assert webhooks.deliver(delivery_id, final_attempt=False) == "failed"
        assert "changed or removed" in db.session.get(WebhookDelivery, delivery_id).last_error
