"""Google Cloud Vision: for scripts and print quality that Tesseract reads badly.

One DOCUMENT_TEXT_DETECTION call per page gives both the text and the word boxes. The engine
never retries by itself: a TransientOcrError goes back to the batch task, which retries the page
with back-off and knows how many attempts are left (worker/tasks.py).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import vision
from google.oauth2 import service_account

from app.engines.base import OcrError, OcrResult, TransientOcrError

#: Tesseract language codes (what jobs store) to the BCP-47 hints Vision takes.
LANGUAGE_HINTS = {
    "san": "sa",
    "hin": "hi",
    "tam": "ta",
    "eng": "en",
    "mar": "mr",
    "kan": "kn",
    "tel": "te",
    "ben": "bn",
    "guj": "gu",
    "mal": "ml",
}

#: gRPC status codes of a per-image error that may pass: UNAVAILABLE, RESOURCE_EXHAUSTED,
#: DEADLINE_EXCEEDED, INTERNAL, ABORTED.
TRANSIENT_STATUS_CODES = frozenset({14, 8, 4, 13, 10})

# Aborted (gRPC ABORTED) is here too, so that a call error and a per-image error with the same
# cause are treated alike.
_TRANSIENT_CALL_ERRORS = (
    api_exceptions.TooManyRequests,
    api_exceptions.ServiceUnavailable,
    api_exceptions.InternalServerError,
    api_exceptions.BadGateway,
    api_exceptions.GatewayTimeout,
    api_exceptions.DeadlineExceeded,
    api_exceptions.Aborted,
)

# Network failures below the API: the REST transport lets requests' errors through, and
# google-auth raises TransportError when it cannot reach the token endpoint.
_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    auth_exceptions.TransportError,
)

_CANNOT_READ = "Google Cloud Vision could not read the page"

_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class GoogleVisionEngine:
    name = "google"
    label = "Google Cloud Vision"

    def unavailable_reason(self, config: dict[str, Any]) -> str | None:
        if config.get("GOOGLE_VISION_ENDPOINT"):
            return None  # a stand-in needs no credentials file
        path = config.get("GOOGLE_APPLICATION_CREDENTIALS")
        if not path:
            return "GOOGLE_APPLICATION_CREDENTIALS is not set"
        if not Path(path).exists():
            return f"the credentials file {path} does not exist"
        if not Path(path).is_file():
            return f"the credentials file {path} is not a file"
        if not os.access(path, os.R_OK):
            return f"the credentials file {path} is not readable"
        return None

    def languages(self, config: dict[str, Any]) -> set[str] | None:
        return None  # Vision reads any script; the job's language only becomes a hint

    def recognize(
        self, image_path: Path, language: str, config: dict[str, Any], timeout: float
    ) -> OcrResult:
        try:
            content = Path(image_path).read_bytes()
        except OSError as exc:
            raise OcrError(f"could not read the page image: {exc.strerror}") from exc
        response = _annotate(_client_for(config), content, language_hints(language), timeout)
        if response.error.message:
            transient = response.error.code in TRANSIENT_STATUS_CODES
            error_class = TransientOcrError if transient else OcrError
            raise error_class(f"{_CANNOT_READ}: {response.error.message}")
        # A blank page comes back without an annotation, which reads as empty text: not an error.
        annotation = response.full_text_annotation
        return OcrResult(text=annotation.text, boxes=word_boxes(annotation))


def _annotate(
    client: vision.ImageAnnotatorClient, content: bytes, hints: list[str], timeout: float
) -> vision.AnnotateImageResponse:
    """One DOCUMENT_TEXT_DETECTION call, its failures sorted into those worth a retry or not."""
    try:
        # retry=None: the library's default retry would go on for up to 600 s, past the page
        # time limit, and would repeat what the batch task's retries already do.
        return client.document_text_detection(
            image={"content": content},
            image_context={"language_hints": hints},
            retry=None,
            timeout=timeout,
        )
    except _TRANSIENT_CALL_ERRORS as exc:
        raise TransientOcrError(f"Google Cloud Vision is busy or failing: {_message(exc)}") from exc
    # The HTTP classes, so that REST (Forbidden) and gRPC (PermissionDenied) errors both match.
    except (api_exceptions.Unauthorized, api_exceptions.Forbidden) as exc:
        raise OcrError(f"Google Cloud Vision refused the credentials: {_message(exc)}") from exc
    except api_exceptions.GoogleAPICallError as exc:
        raise OcrError(f"{_CANNOT_READ}: {_message(exc)}") from exc
    except _NETWORK_ERRORS as exc:
        reason = type(exc).__name__
        raise TransientOcrError(f"could not reach Google Cloud Vision ({reason})") from exc
    except auth_exceptions.GoogleAuthError as exc:  # e.g. a revoked service-account key
        raise OcrError(f"Google rejected the credentials: {exc}") from exc


def language_hints(language: str) -> list[str]:
    """BCP-47 hints for a Tesseract-style code such as "hin+eng"; [] lets Vision detect it."""
    codes = (code.strip() for code in language.split("+"))
    # An unknown code is dropped rather than guessed at: with no hint Vision detects the script.
    return [LANGUAGE_HINTS[code] for code in codes if code in LANGUAGE_HINTS]


#: Breaks after a symbol that end a line of text (Vision's TextAnnotation.DetectedBreak):
#: EOL_SURE_SPACE, HYPHEN, LINE_BREAK.
_LINE_ENDING_BREAKS = frozenset({3, 4, 5})


def word_boxes(annotation: Any) -> list[list[Any]]:
    """Words of a full_text_annotation as [text, left, top, width, height, conf 0-100, line].

    Vision has no lines of its own: a line ends at a word whose last symbol is followed by a
    line break, and at the end of each paragraph.
    """
    boxes = []
    line = 0
    for page in annotation.pages:
        for block in page.blocks:
            for paragraph in block.paragraphs:
                for word in paragraph.words:
                    text = "".join(symbol.text for symbol in word.symbols)
                    if text.strip():
                        box = [text, *_extent(word.bounding_box), _percent(word.confidence)]
                        boxes.append([*box, line])
                    last = word.symbols[-1] if word.symbols else None
                    if last is not None and _ends_line(last):
                        line += 1
                if boxes and boxes[-1][6] == line:
                    line += 1
    return boxes


def _ends_line(symbol: Any) -> bool:
    detected = symbol.property.detected_break if symbol.property else None
    return detected is not None and int(detected.type_) in _LINE_ENDING_BREAKS


def _extent(bounding_box: Any) -> list[int]:
    # Vision leaves out a coordinate that is 0, and proto3 reads a missing one back as 0.
    xs = [vertex.x for vertex in bounding_box.vertices]
    ys = [vertex.y for vertex in bounding_box.vertices]
    left, top = min(xs, default=0), min(ys, default=0)
    return [left, top, max(xs, default=0) - left, max(ys, default=0) - top]


def _percent(confidence: float) -> float:
    return round(confidence * 100, 1)


def _message(exc: api_exceptions.GoogleAPICallError) -> str:
    # Errors over REST start with "POST <url>: ", which tells a user nothing.
    message = re.sub(r"^[A-Z]+ \S+: ", "", exc.message or "")
    return message or type(exc).__name__


def _client_for(config: dict[str, Any]) -> vision.ImageAnnotatorClient:
    try:
        return build_client(
            config.get("GOOGLE_VISION_ENDPOINT"), config.get("GOOGLE_APPLICATION_CREDENTIALS")
        )
    except (auth_exceptions.GoogleAuthError, ValueError, OSError) as exc:
        raise OcrError(f"could not load the Google credentials: {exc}") from exc


@functools.cache
def build_client(endpoint: str | None, credentials_path: str | None) -> vision.ImageAnnotatorClient:
    """One client per process and settings, built on first use.

    Never at import: a worker process is forked from the Celery parent, and a gRPC channel
    made before the fork does not work after it.
    """
    if endpoint and endpoint.startswith("http://"):
        # A local stand-in speaks plain HTTP, which only the REST transport can do; it keeps
        # the http:// of api_endpoint as given (transports/rest_base.py).
        return vision.ImageAnnotatorClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options={"api_endpoint": endpoint},
        )
    credentials = None  # the library then finds them itself (GOOGLE_APPLICATION_CREDENTIALS)
    if credentials_path:
        # Loaded from the configured path, which may differ from the worker's environment.
        credentials = service_account.Credentials.from_service_account_file(
            credentials_path, scopes=_SCOPES
        )
    client_options = {"api_endpoint": endpoint} if endpoint else None
    return vision.ImageAnnotatorClient(credentials=credentials, client_options=client_options)


ENGINE = GoogleVisionEngine()
