"""A project's webhook: the URL its editors set, and the signed POST sent when a job ends.

The URL is a request the server makes on a user's behalf, so it is checked like one (SSRF):
http or https only, no credentials, and every address its host resolves to must be public,
unless WEBHOOK_ALLOW_PRIVATE=1. The check runs when the URL is set, with a message saying what
is wrong, and again before each attempt, after resolving the name afresh; the connection then
goes to the very address that was checked (the Host header and TLS still name the host), so a
name that resolves to a public address for the check and to 127.0.0.1 for the connection (DNS
rebinding) reaches nothing. Redirects are never followed: a 3xx is a failed delivery.

Delivery is the Celery task DELIVER_WEBHOOK (worker/tasks.py): one WebhookDelivery row per
event holds the exact body, and each attempt updates its count, status and error, which the
project page shows. Delivery is at least once: a worker killed between the POST and the commit
sends it again, so the body carries the delivery id for receivers to drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app
from sqlalchemy import select

from app import queue, task_names
from app.extensions import db
from app.models import Job, Project, WebhookDelivery, utcnow
from app.services.notifications import job_path

log = logging.getLogger(__name__)

EVENT_JOB_ENDED = "job.ended"
#: Attempts per delivery at most. With Celery's exponential backoff from RETRY_BACKOFF
#: seconds (5, 10, 20, ... 320, each drawn at random below that bound by retry_jitter), the
#: last attempt comes at most about 10 minutes after the first.
MAX_ATTEMPTS = 8
RETRY_BACKOFF = 5
RETRY_BACKOFF_MAX = 600
MAX_URL_LENGTH = 2048
#: Statuses worth another attempt: the receiver is busy or broken for now.
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
#: Attempts shown on the project page.
SHOWN_DELIVERIES = 10
#: A response body is read this far, for the error shown; the rest is not wanted.
MAX_RESPONSE_BYTES = 1024
#: IPv6 prefix of NAT64 gateways, which reach the IPv4 address in the last 32 bits.
NAT64 = ipaddress.ip_network("64:ff9b::/96")

#: Resolves (host, port) to the addresses a connection may go to.
Resolver = Callable[[str, int], list[str]]


class WebhookError(ValueError):
    """A user-facing reason a webhook URL is refused."""


class WebhookRetry(RuntimeError):
    """This attempt failed in a way another attempt may not (the task retries with backoff)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`addresses`, all allowed) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def address_refusal(address: str) -> str | None:
    """Why a connection to `address` is refused, or None if it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address: judge it instead.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(str(embedded))
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


def check_url(url: str, *, allow_private: bool, resolve: Resolver = system_resolver) -> Target:
    """Parse and resolve `url`; WebhookError says why it may not be used."""
    url = (url or "").strip()
    if len(url) > MAX_URL_LENGTH:
        raise WebhookError(f"A webhook URL is at most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookError(f"That is not a URL ({exc}).") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookError("A webhook URL starts with https:// (or http://).")
    if not parts.hostname:
        raise WebhookError("A webhook URL names a host, as in https://example.org/hook.")
    if parts.username is not None or parts.password is not None:
        raise WebhookError("Put no user name or password in a webhook URL.")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        addresses = []
    if not addresses:
        raise WebhookError(f"The host {host} does not resolve to an address.")
    if not allow_private:
        for address in addresses:
            refusal = address_refusal(address)
            if refusal is not None:
                raise WebhookError(
                    f"The host {host} resolves to {address}, {refusal}: webhooks go only to "
                    "public addresses (an operator can allow private ones with "
                    "WEBHOOK_ALLOW_PRIVATE=1)."
                )
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(parts.scheme, host, port, path, tuple(addresses))


def set_webhook(project: Project, url: str | None, *, resolve: Resolver = system_resolver) -> None:
    """Set (or with None or "", remove) the project's webhook URL, after checking it."""
    if not url or not url.strip():
        project.webhook_url = None
        db.session.commit()
        return
    if not current_app.config["WEBHOOK_SECRET"]:
        raise WebhookError(
            "Webhooks are off on this server: WEBHOOK_SECRET is not set (ask an operator)."
        )
    check_url(url, allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE"], resolve=resolve)
    project.webhook_url = url.strip()
    db.session.commit()


def sign(body: bytes, secret: str) -> str:
    """The X-Signature-256 header of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def job_ended_payload(job: Job) -> dict:
    return {
        "event": EVENT_JOB_ENDED,
        "kind": job.kind,
        "project": job.project.slug,
        "task_id": job.id,
        "state": job.state,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "skipped": job.skipped,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "url": current_app.config["PUBLIC_URL"] + job_path(job),
    }


def send_job_ended(job: Job) -> WebhookDelivery | None:
    """Record the delivery of `job`'s end and hand it to a worker; None when the project has
    no webhook. Idempotent: a job's end is delivered once however often this is called."""
    project = job.project
    if not project.webhook_url:
        return None
    if not current_app.config["WEBHOOK_SECRET"]:
        log.warning("webhook of %s not sent: WEBHOOK_SECRET is not set", project.slug)
        return None
    existing = db.session.scalar(
        select(WebhookDelivery).filter_by(job_id=job.id, event=EVENT_JOB_ENDED)
    )
    if existing is not None:
        return existing
    delivery = WebhookDelivery(
        project_id=project.id,
        job_id=job.id,
        url=project.webhook_url,
        event=EVENT_JOB_ENDED,
        body="",  # written below, once the row has the id the body carries
    )
    db.session.add(delivery)
    db.session.flush()
    payload = {"delivery_id": delivery.id, **job_ended_payload(job)}
    delivery.body = json.dumps(payload, separators=(",", ":"))
    db.session.commit()
    queue.enqueue(task_names.DELIVER_WEBHOOK, delivery_id=delivery.id)
    return delivery


# -- delivery ----------------------------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to `address`, whatever the host name resolves to by now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `address`; the certificate is still checked against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> tuple:
    """POST to the first checked address that accepts a connection: (status, text)."""
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    last_error: OSError | None = None
    for address in target.addresses:
        connection = connection_class(target.host, target.port, address, timeout)
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
            if 300 <= response.status < 400:
                text = f"redirect to {response.getheader('Location', '?')} not followed"
            return response.status, text
        except ConnectionRefusedError as exc:
            last_error = exc  # try the host's next address
        finally:
            connection.close()
    raise last_error or OSError("no address to connect to")


def deliver(
    delivery_id: int, *, final_attempt: bool, resolve: Resolver = system_resolver
) -> str | None:
    """Make one attempt at `delivery_id`; returns its state afterwards (None: no such row).

    Raises WebhookRetry when the attempt failed in a way that may pass later and it was not
    the final one; the attempt is recorded first either way.
    """
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.state != "pending":
        return None if delivery is None else delivery.state
    config = current_app.config
    project = db.session.get(Project, delivery.project_id)
    status, error, retry = None, None, False
    if project is None or project.webhook_url != delivery.url:
        error = "the project's webhook URL was changed or removed before delivery"
    elif not config["WEBHOOK_SECRET"]:
        error = "WEBHOOK_SECRET is not set"
    else:
        body = delivery.body.encode()
        try:
            # Checked again now: the name may resolve elsewhere than when the URL was set.
            target = check_url(
                delivery.url, allow_private=config["WEBHOOK_ALLOW_PRIVATE"], resolve=resolve
            )
            status, text = _post(
                target,
                body,
                {
                    "Content-Type": "application/json",
                    "User-Agent": "ocr-proofing-webhook/1",
                    "X-Webhook-Event": delivery.event,
                    "X-Webhook-Delivery": str(delivery.id),
                    "X-Signature-256": sign(body, config["WEBHOOK_SECRET"]),
                },
                float(config["WEBHOOK_TIMEOUT"]),
            )
            if not 200 <= status < 300:
                error = f"HTTP {status}: {text.strip()[:200]}".rstrip(": ")
                retry = status in RETRY_STATUSES
        except WebhookError as exc:
            error, retry = str(exc), "does not resolve" in str(exc)
        except (OSError, http.client.HTTPException, SoftTimeLimitExceeded) as exc:
            error, retry = f"{type(exc).__name__}: {exc}"[:300], True
    delivery.attempts += 1
    delivery.last_status_code = status
    delivery.last_error = error
    if error is None:
        delivery.state, delivery.finished_at = "delivered", utcnow()
    elif not retry or final_attempt:
        delivery.state, delivery.finished_at = "failed", utcnow()
    db.session.commit()
    log.info(
        "webhook delivery %d to project %d, attempt %d: %s",
        delivery.id,
        delivery.project_id,
        delivery.attempts,
        error or f"HTTP {status}",
    )
    if delivery.state == "pending":
        raise WebhookRetry(error)
    return delivery.state


def recent_deliveries(project: Project, limit: int = SHOWN_DELIVERIES) -> list[WebhookDelivery]:
    return list(
        db.session.scalars(
            select(WebhookDelivery)
            .filter_by(project_id=project.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )
