"""`make run` (app/devserver.py) as a newcomer runs it: with nothing answering REDIS_URL it starts
a redis-server of its own, prepares the database and the demo, starts the worker and the web
app, prints where to sign in, and Ctrl-C stops every process it started.

The devserver runs as a real `python -m app.devserver` on free ports and a fresh data directory;
the processes it starts are found by walking /proc from its pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis
import requests

from tests.support import ROOT, child_pids, free_port, wait_for

pytestmark = pytest.mark.integration

#: Settings a developer's shell may carry that would send the devserver elsewhere.
FOREIGN = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SECRET_KEY", "PORT")


def process_tree(pid: int) -> set[int]:
    """`pid` and every process below it."""
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo += child_pids(current)
    return tree


def identity(pid: int) -> tuple[str, str] | None:
    """(start time, command line) of a live process; None once it is gone or a zombie (the
    start time tells a reused pid from the process that had it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, start_time = stat[0], stat[19]
    return None if state in ("Z", "X") else (start_time, cmdline)


class Output:
    """The devserver's output, read as it comes so that its pipe never fills."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for raw in stream:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def test_make_run_starts_redis_when_none_answers_and_ctrl_c_stops_everything(tmp_path):
    redis_port, web_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key not in FOREIGN}
    env |= {
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DATA_DIR": str(tmp_path / "data"),
        "PORT": str(web_port),
        "PYTHONUNBUFFERED": "1",
        "OMP_THREAD_LIMIT": "1",
    }
    devserver = subprocess.Popen(
        [sys.executable, "-m", "app.devserver"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = Output(devserver)
    started: dict[int, tuple[str, str]] = {}
    try:

        def banner_shown():
            if devserver.poll() is not None:
                raise AssertionError(f"the devserver exited:\n{output.text}")
            return "Ctrl-C stops everything." in output.text

        wait_for(banner_shown, 180, "the devserver's banner", interval=0.3)
        assert f"Proofing is running:  http://127.0.0.1:{web_port}" in output.text, output.text
        assert "(started here, data in" in output.text, output.text

        # Its own redis-server, on REDIS_URL's port, as a child of the devserver.
        started = {pid: who for pid in process_tree(devserver.pid) if (who := identity(pid))}
        commands = [cmdline for _, cmdline in started.values()]
        # (redis-server names itself by its address in its process title.)
        assert any(c.startswith(f"redis-server 127.0.0.1:{redis_port}") for c in commands), commands
        assert any("celery" in c and " worker" in c for c in commands), commands
        assert any("gunicorn" in c for c in commands), commands
        client = redis.Redis(port=redis_port, socket_connect_timeout=2)
        try:
            assert client.ping()
        finally:
            client.close()

        # The web app answers, and reaches the database and the Redis started for it.
        with requests.get(f"http://127.0.0.1:{web_port}/healthz", timeout=10) as health:
            checks = health.json()["checks"]
        assert checks["database"] == {"ok": True}, checks
        assert checks["redis"] == {"ok": True}, checks

        devserver.send_signal(signal.SIGINT)  # Ctrl-C
        assert devserver.wait(60) == 0, output.text
        output.thread.join(10)
        assert output.lines[-1].endswith("| stopped"), output.text
        survivors = [
            (pid, cmdline)
            for pid, (start_time, cmdline) in started.items()
            if (now := identity(pid)) and now[0] == start_time
        ]
        assert survivors == [], survivors
        client = redis.Redis(port=redis_port, socket_connect_timeout=1)
        try:
            with pytest.raises(redis.ConnectionError):
                client.ping()
        finally:
            client.close()
    finally:
        # A failed run stops what it started all the same: the devserver's own Ctrl-C path
        # first, then SIGKILL for whatever is left of the processes seen under it.
        if devserver.poll() is None:
            started |= {pid: who for pid in process_tree(devserver.pid) if (who := identity(pid))}
            devserver.send_signal(signal.SIGINT)
            try:
                devserver.wait(30)
            except subprocess.TimeoutExpired:
                devserver.kill()
                devserver.wait(10)
        for pid, (start_time, _) in started.items():
            if (now := identity(pid)) and now[0] == start_time:
                os.kill(pid, signal.SIGKILL)
        devserver.stdout.close()
