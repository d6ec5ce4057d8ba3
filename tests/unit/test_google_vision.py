"""The Google Vision engine, through the real client library, against a local stand-in.

The stand-in answers the Vision REST API (POST /v1/images:annotate) on 127.0.0.1, so these tests
check what goes over the wire and how real responses and HTTP errors are read, without Google.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from app.engines.base import OcrError, TransientOcrError
from app.engines.google_vision import ENGINE, build_client, language_hints

# Small, so that a test which goes wrong fails fast instead of hanging.
TIMEOUT = 2.0

PAGE = {
    "responses": [
        {
            "fullTextAnnotation": {
                "text": "नमः शिवाय\nOm\n",
                "pages": [
                    {
                        "blocks": [
                            {
                                "paragraphs": [
                                    {
                                        "words": [
                                            {
                                                "boundingBox": {
                                                    "vertices": [
                                                        {"x": 10, "y": 5},
                                                        {"x": 60, "y": 5},
                                                        {"x": 60, "y": 25},
                                                        {"x": 10, "y": 25},
                                                    ]
                                                },
                                                "symbols": [
                                                    {"text": "न"},
                                                    {
                                                        "text": "मः",
                                                        "property": {
                                                            "detectedBreak": {"type": "LINE_BREAK"}
                                                        },
                                                    },
                                                ],
                                                "confidence": 0.987,
                                            },
                                            {
                                                # Vision leaves out coordinates that are 0.
                                                "boundingBox": {
                                                    "vertices": [
                                                        {"y": 30},
                                                        {"x": 20, "y": 30},
                                                        {"x": 20},
                                                        {},
                                                    ]
                                                },
                                                "symbols": [{"text": "O"}, {"text": "m"}],
                                                "confidence": 0.5,
                                            },
                                        ]
                                    }
                                ]
                            }
                        ]
                    }
                ],
            }
        }
    ]
}


class StandIn:
    """What the stand-in answers next, and the request bodies it has received."""

    def __init__(self) -> None:
        self.status = 200
        self.body: dict = PAGE
        #: Cleared to hold every answer back until the test (or the teardown) sets it.
        self.answer_now = threading.Event()
        self.answer_now.set()
        self.answers_sent = 0
        self.requests: list[dict] = []
        self.paths: list[str] = []
        self.endpoint = ""

    def reply(self, status: int, body: dict, *, hold: bool = False) -> None:
        self.status, self.body = status, body
        if hold:
            self.answer_now.clear()


@pytest.fixture
def vision():
    stand_in = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            stand_in.paths.append(self.path.split("?")[0])  # the query only sets JSON options
            stand_in.requests.append(json.loads(self.rfile.read(length)))
            stand_in.answer_now.wait(30)
            payload = json.dumps(stand_in.body).encode()
            try:
                self.send_response(stand_in.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                stand_in.answers_sent += 1
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting, as the timeout test wants

        def log_message(self, *args):
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # A short poll interval: shutdown() waits for it, 0.5 s by default, at every teardown.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    stand_in.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    yield stand_in
    stand_in.answer_now.set()  # a held answer goes, so that shutdown need not wait for it
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "page.png"
    Image.new("L", (80, 40), 255).save(path)
    return path


def config_for(endpoint: str | None, credentials: str | None = None) -> dict:
    return {"GOOGLE_VISION_ENDPOINT": endpoint, "GOOGLE_APPLICATION_CREDENTIALS": credentials}


def test_a_page_gives_text_and_word_boxes(vision, image):
    """Text is taken as is; boxes come from the vertices, confidence scaled to 0-100, and a
    line break after a word starts the next line."""
    result = ENGINE.recognize(image, "san+eng", config_for(vision.endpoint), timeout=TIMEOUT)

    assert result.text == "नमः शिवाय\nOm\n"
    assert result.boxes == [["नमः", 10, 5, 50, 20, 98.7, 0], ["Om", 0, 0, 20, 30, 50.0, 1]]


def test_the_image_and_language_hints_are_sent(vision, image):
    """The request carries the image bytes (base64) and the mapped language hints."""
    ENGINE.recognize(image, "hin+eng", config_for(vision.endpoint), timeout=TIMEOUT)

    assert vision.paths == ["/v1/images:annotate"]
    (request,) = vision.requests[0]["requests"]
    assert base64.b64decode(request["image"]["content"]) == image.read_bytes()
    assert request["imageContext"]["languageHints"] == ["hi", "en"]
    assert len(request["features"]) == 1


def test_an_empty_page_is_empty_text_not_an_error(vision, image):
    """A page Vision finds no text on comes back without an annotation."""
    vision.reply(200, {"responses": [{}]})

    result = ENGINE.recognize(image, "eng", config_for(vision.endpoint), timeout=TIMEOUT)

    assert result.text == ""
    assert result.boxes == []


def test_a_per_image_error_is_an_ocr_error(vision, image):
    """INVALID_ARGUMENT for this image will not pass on a retry."""
    vision.reply(200, {"responses": [{"error": {"code": 3, "message": "Bad image data."}}]})

    with pytest.raises(OcrError, match="Bad image data.") as raised:
        ENGINE.recognize(image, "eng", config_for(vision.endpoint), timeout=TIMEOUT)
    assert not isinstance(raised.value, TransientOcrError)


def test_a_per_image_unavailable_error_is_transient(vision, image):
    """UNAVAILABLE (14) inside a 200 response may pass, so the page is retried."""
    vision.reply(200, {"responses": [{"error": {"code": 14, "message": "Try again later."}}]})

    with pytest.raises(TransientOcrError, match="Try again later."):
        ENGINE.recognize(image, "eng", config_for(vision.endpoint), timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("status", "grpc_status"), [(429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE")]
)
def test_rate_limits_and_outages_are_transient(vision, image, status, grpc_status):
    """A 429 or 503 is raised at once (no retry inside the library) as transient."""
    error = {"code": status, "message": "Slow down.", "status": grpc_status}
    vision.reply(status, {"error": error})

    with pytest.raises(TransientOcrError, match="Slow down."):
        ENGINE.recognize(image, "eng", config_for(vision.endpoint), timeout=TIMEOUT)
    assert len(vision.requests) == 1


def test_permission_denied_is_not_transient(vision, image):
    """A 403 (API disabled, key without access) will not pass by retrying."""
    error = {"code": 403, "message": "Vision API is disabled.", "status": "PERMISSION_DENIED"}
    vision.reply(403, {"error": error})

    expected = "refused the credentials: Vision API is disabled.$"
    with pytest.raises(OcrError, match=expected) as raised:
        ENGINE.recognize(image, "eng", config_for(vision.endpoint), timeout=TIMEOUT)
    assert not isinstance(raised.value, TransientOcrError)


def test_a_refused_connection_is_transient(image):
    """Nothing listening on the endpoint: the network may come back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(TransientOcrError, match="could not reach"):
        ENGINE.recognize(
            image, "eng", config_for(f"http://127.0.0.1:{closed_port}"), timeout=TIMEOUT
        )


def test_a_slow_answer_times_out_as_transient(vision, image):
    """The timeout reaches the HTTP call, so a hung service cannot hold a worker: with the
    answer held back, the call gives up with a transient timeout error, before any answer."""
    vision.reply(200, PAGE, hold=True)

    with pytest.raises(TransientOcrError, match=r"\(ReadTimeout\)"):
        ENGINE.recognize(image, "eng", config_for(vision.endpoint), timeout=0.2)
    assert len(vision.requests) == 1  # the request arrived...
    assert vision.answers_sent == 0  # ...and the call did not wait for its answer


def test_a_broken_credentials_file_is_an_ocr_error(tmp_path, image):
    """Loading the key fails before any network call, with a message, not a crash."""
    key = tmp_path / "key.json"
    key.write_text("{not json")

    with pytest.raises(OcrError, match="could not load the Google credentials") as raised:
        ENGINE.recognize(image, "eng", config_for(None, str(key)), timeout=TIMEOUT)
    assert not isinstance(raised.value, TransientOcrError)


def test_one_client_per_settings(vision):
    """The client is built once per process and reused for every page."""
    assert build_client(vision.endpoint, None) is build_client(vision.endpoint, None)


@pytest.mark.parametrize(
    ("language", "hints"),
    [
        ("san", ["sa"]),
        ("hin+eng", ["hi", "en"]),
        ("tam+mar+kan+tel+ben+guj+mal", ["ta", "mr", "kn", "te", "bn", "gu", "ml"]),
        ("xyz+eng", ["en"]),
        ("xyz", []),
        ("", []),
    ],
)
def test_language_hints(language, hints):
    """Tesseract codes map to BCP-47; unknown ones are dropped, leaving Vision to detect."""
    assert language_hints(language) == hints


def test_languages_is_none():
    """Vision reads any language, so the job's language is never refused as not installed."""
    assert ENGINE.languages(config_for(None)) is None


def test_available_with_an_endpoint_alone():
    """A stand-in needs no credentials file."""
    assert ENGINE.unavailable_reason(config_for("http://127.0.0.1:1")) is None


def test_available_with_a_readable_credentials_file(tmp_path):
    key = tmp_path / "key.json"
    key.write_text("{}")
    assert ENGINE.unavailable_reason(config_for(None, str(key))) is None


def test_unavailable_without_credentials():
    assert ENGINE.unavailable_reason(config_for(None)) == (
        "GOOGLE_APPLICATION_CREDENTIALS is not set"
    )


def test_unavailable_when_the_credentials_file_is_missing(tmp_path):
    missing = tmp_path / "missing.json"
    assert ENGINE.unavailable_reason(config_for(None, str(missing))) == (
        f"the credentials file {missing} does not exist"
    )


def test_unavailable_when_the_credentials_path_is_a_directory(tmp_path):
    assert ENGINE.unavailable_reason(config_for(None, str(tmp_path))) == (
        f"the credentials file {tmp_path} is not a file"
    )


def test_unavailable_when_the_credentials_file_is_unreadable(tmp_path, monkeypatch):
    """os.access is faked: tests may run as root, whom chmod 000 does not stop."""
    key = tmp_path / "key.json"
    key.write_text("{}")
    monkeypatch.setattr("app.engines.google_vision.os.access", lambda path, mode: False)

    assert ENGINE.unavailable_reason(config_for(None, str(key))) == (
        f"the credentials file {key} is not readable"
    )
