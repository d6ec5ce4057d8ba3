"""Whatever is typed into search or search and replace, the answer is a page or a readable
400, never a 500, and nothing is changed without a preview's versions."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.extensions import db
from app.models import Page
from tests.support import csrf_token

FEW = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
form_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=250)


@FEW
@given(query=form_text)
@example(query="%_\\")
@example(query="\u0301")
@example(query="x\ny")
def test_any_search_is_a_page_or_a_400(app, book, sign_in, query):
    response = sign_in("reader").get("/proofing/book/search", query_string={"q": query})
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:300]


@FEW
@given(find=form_text, replacement=form_text, regex=st.booleans(), versions=form_text)
@example(find="(?P<x>", replacement="", regex=True, versions="")
@example(find="a", replacement="\\g<nope>", regex=True, versions="{}")
@example(find="a", replacement="b", regex=False, versions='{"1": "x"}')
def test_any_replace_form_is_a_page_or_a_400(
    app, book, sign_in, find, replacement, regex, versions
):
    client = sign_in("editor")
    data = {
        "find": find,
        "replace": replacement,
        "versions": versions,
        "csrf_token": csrf_token(client, "/proofing/book/search"),
        **({"regex": "on"} if regex else {}),
    }
    before = {p.id: p.version for p in db.session.query(Page)}
    preview = client.post("/proofing/book/replace/preview", data=data)
    assert preview.status_code in (200, 400), preview.get_data(as_text=True)[:300]
    applied = client.post("/proofing/book/replace", data=data)
    assert applied.status_code in (200, 303, 400), applied.get_data(as_text=True)[:300]
    db.session.expire_all()
    try:
        sent = json.loads(versions)
    except ValueError:
        sent = None
    if not isinstance(sent, dict) or not sent:
        assert {p.id: p.version for p in db.session.query(Page)} == before
