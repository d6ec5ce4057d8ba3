"""Operating the system (app/services and app/views for metrics, the dashboard,
notifications, webhooks, retention and deletion): the helpers these modules share (their
fixtures are in conftest.py here)."""

from __future__ import annotations

from tests.support import add_ready_project, login

PASSWORD = "ops-password"


def client_of(app, username: str):
    client = app.test_client()
    response = login(client, username, PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def ready_project(app, slug: str, pages: int = 3) -> int:
    with app.app_context():
        return add_ready_project(slug, pages).id
