"""Real processes for integration tests: a redis-server on a free port, Celery workers, the web
app on a free port, and a throw-away PostgreSQL cluster. Each can be stopped and started again,
for the fault tests."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pypdfium2 as pdfium
import pytest
import redis
from werkzeug.serving import make_server

from app import processes

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "corpus"

#: Runs a test taking the `app` fixture twice: on SQLite, and on PostgreSQL (marked `postgres`).
BOTH_DATABASES = pytest.mark.parametrize(
    "app", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


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


def postgres_bin_dir() -> Path:
    """Where initdb and postgres are: on PATH if there, else the newest of Debian's
    /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda initdb: [int(part) for part in re.findall(r"\d+", initdb.parent.parent.name)],
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: no initdb on PATH or under /usr/lib/postgresql/*/bin "
            "(make test installs Debian's postgresql), or set TEST_POSTGRES_URL to a server"
        )
    return found[-1].parent


class PostgresCluster:
    """A PostgreSQL cluster of its own for one test session: initdb in a temporary folder,
    trust authentication, a free port on 127.0.0.1, its socket in that folder; never the
    machine's own server. Durability is off (fsync, synchronous_commit): the cluster is thrown
    away at the end, and the tests are about SQL, not crash safety."""

    def __init__(self) -> None:
        self.bin_dir = postgres_bin_dir()
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        # initdb and postgres refuse to run as root: as root, run them as an unprivileged user
        # that owns the folder (created outside pytest's tmp tree, which only root may enter).
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                self.user = pwd.getpwnam("nobody")
        self.directory = Path(tempfile.mkdtemp(prefix="ocr-test-postgres-"))
        if self.user:
            os.chown(self.directory, self.user.pw_uid, self.user.pw_gid)
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_user(self) -> dict:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def start(self) -> PostgresCluster:
        initdb = [
            str(self.bin_dir / "initdb"),
            *("-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
            *("--no-locale", "--no-sync", "--no-instructions"),
        ]
        done = subprocess.run(initdb, capture_output=True, text=True, **self._as_user())
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.directory),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        args = [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, **self._as_user()
            )
        wait_for(self._answers, 30, f"PostgreSQL on port {self.port} (log: {self.log_path})")
        return self

    def _answers(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            log = self.log_path.read_text(errors="replace")[-3000:]
            raise AssertionError(f"postgres exited; see {self.log_path}:\n{log}")
        try:
            psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user="postgres",
                dbname="postgres",
                connect_timeout=1,
            ).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: no waiting for clients
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)
