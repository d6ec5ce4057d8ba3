"""Real processes for integration tests: a redis-server on a free port, Celery workers, and
the web app on a free port. Each can be stopped and started again, for the fault tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
import redis
from werkzeug.serving import make_server

from app import processes

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "corpus"


def multipage_pdf(path: Path, indices: list[int]) -> Path:
    """A PDF of some pages of multipage.pdf, by 0-based index (2 and 3 are the fastest to
    OCR, about 0.5 s each)."""
    source = pdfium.PdfDocument(str(CORPUS / "multipage.pdf"))
    out = pdfium.PdfDocument.new()
    try:
        out.import_pages(source, indices)
        out.save(str(path))
    finally:
        out.close()
        source.close()
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    """Poll `condition` until it returns something truthy; fail the test with `what` if not."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """A private redis-server: tests can stop it, restart it, and turn persistence on."""

    def __init__(self, directory: Path, *, appendonly: bool = False, password: str | None = None):
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendonly = appendonly
        self.password = password
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1)

    def start(self) -> RedisServer:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--maxmemory-policy",
            "noeviction",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(self._answers, 10, f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


class ProcessGroup:
    """A process started in a session of its own (`start_new_session=True`), so that a test can
    stop or SIGKILL it together with every child it forked."""

    process: subprocess.Popen | None = None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class Worker(ProcessGroup):
    """`celery -A worker worker` in its own process, configured by environment variables."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        concurrency: int = 2,
        queues: str | None = None,
        extra_args: tuple[str, ...] = (),
    ):
        self.env = {**os.environ, **env, "OMP_THREAD_LIMIT": "1", "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.concurrency = concurrency
        self.queues = queues
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None
        self.name = f"test-{free_port()}@localhost"

    def start(self, redis_url: str) -> Worker:
        # The child keeps its own descriptor of the log; ours is closed at once.
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    *processes.WORKER,
                    *(["-Q", self.queues] if self.queues else []),
                    "--concurrency",
                    str(self.concurrency),
                    "-n",
                    self.name,
                    "--without-mingle",
                    "--without-gossip",
                    *self.extra_args,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis.from_url(redis_url)
        wait_for(
            lambda: self._ready(client),
            60,
            f"the Celery worker (log: {self.log_path})",
            interval=0.3,
        )
        return self

    def _ready(self, client: redis.Redis) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"the worker exited; see {self.log_path}:\n{self.log_tail()}")
        return b"ready." in self.log_path.read_bytes()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def child_pids(self) -> list[int]:
        if self.process is None:
            return []
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]


class LiveServer:
    """The Flask app served by werkzeug on a free port, in a thread (for the browser)."""

    def __init__(self, app):
        self.app = app
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
