"""The orjson provider writes what Flask's standard provider writes (app/json_provider.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from app.json_provider import OrjsonProvider

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture
def flask_app():
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    return app


@given(value=JSON_VALUES)
def test_any_json_value_reads_back_the_same(value):
    """Whatever the standard encoder accepts, orjson's output parses back to the same value
    (integers over 64 bits included, through the fallback)."""
    app = Flask(__name__)
    provider = OrjsonProvider(app)
    assert json.loads(provider.dumps(value)) == json.loads(DefaultJSONProvider(app).dumps(value))


def test_status_response_keeps_key_order_and_writes_utf8(flask_app):
    """Keys stay in the order the service built them; non-ASCII reasons are plain UTF-8."""
    status = {"state": "running", "total": 2, "pages": [{"number": 1, "reason": "ग्रन्थ"}]}
    with flask_app.test_request_context():
        answer = jsonify(status)
    assert answer.mimetype == "application/json"
    expected = json.dumps(status, ensure_ascii=False, separators=(",", ":"))
    assert answer.get_data() == expected.encode("utf-8") + b"\n"


def test_datetimes_and_markup_are_written_as_flask_writes_them(flask_app):
    moment = datetime(2026, 12, 1, 21, 55, tzinfo=UTC)
    value = {"at": moment, "html": Markup("<b>x</b>")}
    standard = DefaultJSONProvider(flask_app)
    assert json.loads(flask_app.json.dumps(value)) == json.loads(standard.dumps(value))
    assert json.loads(flask_app.json.dumps(value))["at"] == "Tue, 01 Dec 2026 21:55:00 GMT"


def test_options_such_as_indent_go_to_the_standard_encoder(flask_app):
    assert flask_app.json.dumps({"a": 1}, indent=2) == '{\n  "a": 1\n}'
