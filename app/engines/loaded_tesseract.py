"""One Tesseract kept loaded for each worker process, in a helper process of its own.

`helper().read` sends a page to the helper (app/engines/tesseract_server.py) and waits
for its answer. The helper keeps each language's model loaded, so a page costs what Tesseract
spends on it and no start or model load. Keeping it in a process of its own, not in the
worker, keeps what one process per page gave:

- A page that takes too long is stopped by Tesseract itself at the page's time limit (its
  cancel deadline); if it does not stop, the helper is killed a few seconds later.
- A crash of Tesseract on a hostile image kills the helper, never the worker: the page fails
  with a reason, and the next page starts a new helper.
- The helper ends when its worker process ends (its input closes), so none is left behind,
  and after a page that left it large (TESSERACT_HELPER_MAX_MB), so its memory stays flat.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SERVER = Path(__file__).with_name("tesseract_server.py")
#: Seconds given to the helper past the page's limit to stop itself before it is killed:
#: less than the 5 s before Celery's soft limit (app/celery_app.py).
KILL_GRACE = 3.0
#: Seconds the helper may take to start and say it is ready.
START_TIMEOUT = 30.0


class EngineFailure(Exception):
    """The helper could not read the page: `kind` says why ("unreadable", "language",
    "timeout", "failed", "crashed", "unavailable"), `detail` is what Tesseract said."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class PageReading:
    text: str
    #: [text, left, top, width, height, confidence, line] of every word.
    words: list[list]


class LoadedTesseract:
    """A helper of this thread: started on its first page, and again after it ended or died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._owner = 0  # the pid that started it: a forked child starts its own
        self._buffer = b""
        self._next_id = 0
        self.version: str | None = None

    def read(
        self, image: Path, language: str, timeout: float, max_resident_mb: int | None = None
    ) -> PageReading:
        """The page's text and words; the helper ends after it if it grew past
        `max_resident_mb` (TESSERACT_HELPER_MAX_MB; None: no limit)."""
        with self._lock:
            self._ensure_started()
            self._next_id += 1
            request = {
                "id": self._next_id,
                "image": str(image),
                "language": language,
                "timeout_ms": max(1, round(timeout * 1000)),
                "max_resident_mb": max_resident_mb,
            }
            try:
                self._send(request)
                answer = self._receive(time.monotonic() + timeout + KILL_GRACE)
            except BaseException:
                # Killed, hung, or interrupted (Celery's soft limit): its next answer could
                # be taken for another page's, so this helper is done.
                self.stop()
                raise
            if answer.get("id") != request["id"]:
                self.stop()
                raise EngineFailure("crashed", "the helper answered out of turn")
            if answer.get("ending"):
                self._retire()
        if "error" in answer:
            raise EngineFailure(answer["error"], answer.get("detail", ""))
        return PageReading(answer["text"], answer["words"])

    def stop(self) -> None:
        """Kill the helper (hung, interrupted, or no longer needed)."""
        self._end(kill=True)

    def _retire(self) -> None:
        """The helper ends by itself after this answer (its memory grew): let it go."""
        self._end(kill=False)

    def _end(self, *, kill: bool) -> None:
        process, self._process = self._process, None
        self._buffer = b""
        if process is None or self._owner != os.getpid():
            return  # none, or a forked parent's, which is not this process's to end
        if kill:
            process.kill()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def pid(self) -> int | None:
        """The helper's process id, while one runs (tests stop and kill it)."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    # -- the helper ------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        process = self._process
        if process is not None and self._owner == os.getpid() and process.poll() is None:
            return
        if process is not None and self._owner == os.getpid():
            log.warning("the Tesseract helper exited (%s); starting another", process.returncode)
        self._end(kill=True)
        try:
            process = subprocess.Popen(
                [sys.executable, str(SERVER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=0,
                # One page per process: Tesseract's own threads only slow parallel pages.
                env={**os.environ, "OMP_THREAD_LIMIT": "1"},
                close_fds=True,
            )
        except OSError as exc:
            raise EngineFailure("unavailable", str(exc)) from exc
        self._process, self._owner = process, os.getpid()
        try:
            ready = self._receive(time.monotonic() + START_TIMEOUT)
        except EngineFailure as exc:
            self.stop()
            raise EngineFailure("unavailable", "the Tesseract helper did not start") from exc
        self.version = ready.get("ready")

    def _send(self, request: dict) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
        except (BrokenPipeError, OSError) as exc:
            raise EngineFailure("crashed", "the Tesseract helper is gone") from exc

    def _receive(self, deadline: float) -> dict:
        """The helper's next line, as JSON; EngineFailure at the deadline or if it dies."""
        assert self._process is not None and self._process.stdout is not None
        out = self._process.stdout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineFailure("timeout", "Tesseract did not stop at its deadline")
            ready, _, _ = select.select([out], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(out.fileno(), 1 << 20)
            if not chunk:
                code = self._process.wait()
                raise EngineFailure("crashed", f"the Tesseract helper exited with {code}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)


_threads = threading.local()
#: Every helper of this process, stopped when it exits normally (a killed process's helpers
#: end by themselves, their input closed).
_helpers: list[LoadedTesseract] = []


def helper() -> LoadedTesseract:
    """The helper of this thread: one per pool process of the default prefork pool, and one per
    thread of a thread pool, so that its pages still run side by side."""
    mine = getattr(_threads, "helper", None)
    if mine is None:
        mine = _threads.helper = LoadedTesseract()
        _helpers.append(mine)
    return mine


@atexit.register
def _stop_helpers() -> None:
    for each in _helpers:
        each.stop()
