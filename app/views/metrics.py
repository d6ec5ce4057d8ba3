"""GET /metrics: the Prometheus text format, for a scraper (app/metrics.py says what is in it)."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app.metrics import DeploymentCollector, read_gauges
from app.services.api_tokens import bearer_token

bp = Blueprint("metrics", __name__)


def _authorised() -> bool:
    """With METRICS_TOKEN set, only `Authorization: Bearer <METRICS_TOKEN>` may scrape."""
    expected = current_app.config["METRICS_TOKEN"]
    if not expected:
        return True
    supplied = bearer_token(request.headers.get("Authorization")) or ""
    return hmac.compare_digest(supplied.encode(), expected.encode())


@bp.route("/metrics")
def metrics():
    if not _authorised():
        return Response(
            "Send Authorization: Bearer <METRICS_TOKEN>.\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            mimetype="text/plain",
        )
    # A registry of this deployment's figures only: the default one would add this one
    # gunicorn process's CPU and memory, which say nothing about the others.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeploymentCollector(current_app.extensions["redis"], read_gauges))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
