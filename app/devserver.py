"""`make run`: start everything the app needs on one machine with one command, and stop it all.

It exists so that a newcomer needs no Redis set-up and no three terminals: it starts a
redis-server only when none answers REDIS_URL, prepares the database and the demo project, then
runs the Celery worker (with the embedded beat) and the web app under gunicorn, and says where
to sign in once the web app answers. Ctrl-C, SIGTERM, or any part stopping on its own stops the
rest. Production runs the same commands separately (docs/operations.md, docker-compose.yml).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import redis

from app import processes
from app.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 5000
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Seconds a part gets to stop after SIGTERM before its whole process group is killed. A worker
# killed mid-page loses nothing: the page is acknowledged only once done, so it is redone later.
STOP_GRACE = 5.0


class Failure(Exception):
    """Something the user must fix; the message says what."""


class Stopped(Exception):
    """Ctrl-C, SIGTERM or SIGHUP: stop everything and exit quietly."""


class Supervisor:
    """The child processes, their prefixed output, and stopping them."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.pumps: list[threading.Thread] = []
        self.stop_requested = threading.Event()
        self.output_lock = threading.Lock()

    def say(self, message: str, name: str = "run") -> None:
        with self.output_lock:
            try:
                for line in message.splitlines() or [""]:
                    sys.stdout.write(f"{name:<6}| {line}\n")
                sys.stdout.flush()
            except OSError:
                pass  # the terminal is gone (SIGHUP) or piped into `head`: keep stopping

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        # Each child leads its own process group: Ctrl-C reaches only this supervisor, which
        # stops the parts in order, and a part that will not stop is killed with its children
        # (a worker's pool processes) in one go.
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        self.children.append((name, process))
        pump = threading.Thread(target=self._pump, args=(name, process.stdout), daemon=True)
        pump.start()
        self.pumps.append(pump)
        return process

    def _pump(self, name: str, output: IO[bytes]) -> None:
        for raw in output:
            self.say(raw.decode(errors="replace").rstrip("\n"), name)

    def check(self) -> None:
        """Raise if the user asked to stop or a long-running part has exited."""
        if self.stop_requested.is_set():
            raise Stopped
        for name, process in self.children:
            if name != "setup" and process.poll() is not None:
                raise Failure(f"{name} stopped unexpectedly ({_how(process)}); its output is above")

    def wait_until(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check()
            if condition():
                return
            if time.monotonic() > deadline:
                raise Failure(f"gave up after {timeout:.0f} s waiting for {what}")
            self.stop_requested.wait(0.2)

    def run_step(self, args: list[str], env: dict[str, str]) -> None:
        """Run a one-off command to completion; its failure stops everything."""
        command = " ".join(args[2:])  # `flask --app app db upgrade`, without the interpreter
        process = self.start("setup", args, env)
        self.wait_until(lambda: process.poll() is not None, 600, f"`{command}`")
        if process.returncode != 0:
            raise Failure(f"`{command}` failed ({_how(process)}); its output is above")

    def stop_all(self) -> None:
        """Stop the parts in the reverse order of starting: Redis last, so that the worker can
        still hand its unfinished pages back while it stops."""
        running = [(n, p) for n, p in reversed(self.children) if p.poll() is None]
        if running:
            self.say("stopping " + ", ".join(name for name, _ in running) + " ...")
        for batch in (
            [(n, p) for n, p in running if n != "redis"],
            [(n, p) for n, p in running if n == "redis"],
        ):
            for _, process in batch:
                _signal_group(process, signal.SIGTERM, leader_only=True)
            deadline = time.monotonic() + STOP_GRACE
            for name, process in batch:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.say(f"{name} did not stop within {STOP_GRACE:.0f} s; killing it")
                    _signal_group(process, signal.SIGKILL)
                    process.wait()
        # Pool processes a part left behind when it stopped (or died) go with their group. Not
        # the setup steps': they leave nothing behind, and their group ids are long free.
        for name, process in self.children:
            if name != "setup":
                _signal_group(process, signal.SIGKILL)
        for pump in self.pumps:
            pump.join(timeout=1)


def _how(process: subprocess.Popen) -> str:
    if process.returncode < 0:
        return f"killed by {signal.Signals(-process.returncode).name}"
    return f"exit status {process.returncode}"


def _signal_group(process: subprocess.Popen, signum: int, leader_only: bool = False) -> None:
    try:
        if leader_only:
            process.send_signal(signum)
        else:
            os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.AuthenticationError as exc:
        raise Failure(f"Redis at {_public(url)} answers but refuses us: {exc}") from exc
    except redis.RedisError:
        return False
    finally:
        client.close()


def _public(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def _start_redis(supervisor: Supervisor, url: str, data_dir: Path, env: dict[str, str]) -> None:
    parts = urlsplit(url)
    if parts.scheme != "redis" or parts.hostname not in LOCAL_HOSTS:
        raise Failure(
            f"nothing answers at REDIS_URL={_public(url)}, and only a redis:// URL on this "
            "machine can be started here: start that Redis, or unset REDIS_URL"
        )
    if shutil.which("redis-server") is None:
        raise Failure("redis-server is not installed: `make run` installs it (apt redis-server)")
    directory = data_dir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    port = parts.port or 6379
    args = [
        "redis-server",
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(directory),
        # Append-only file on, snapshots off: a restart of `make run` keeps queued pages and
        # job records. noeviction: an evicted queue message would be a lost page.
        "--appendonly", "yes",
        "--save", "",
        "--maxmemory-policy", "noeviction",
    ]  # fmt: skip
    if parts.password:
        args += ["--requirepass", parts.password]
    supervisor.say(f"no Redis answers at {_public(url)}: starting redis-server on port {port}")
    supervisor.start("redis", args, env)
    supervisor.wait_until(lambda: _redis_answers(url), 30, f"redis-server on port {port}")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As gunicorn binds: a port held only by connections in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _choose_port(env: dict[str, str]) -> int:
    """PORT if set (taken is an error: it was asked for); else 5000 or the next free one."""
    if env.get("PORT"):
        try:
            port = int(env["PORT"])
        except ValueError as exc:
            raise Failure(f"PORT must be a number, got {env['PORT']!r}") from exc
        if not _port_free(port):
            raise Failure(f"port {port} (PORT) is taken: stop what uses it, or choose another")
        return port
    for port in range(DEFAULT_PORT, DEFAULT_PORT + 20):
        if _port_free(port):
            return port
    raise Failure(f"ports {DEFAULT_PORT}-{DEFAULT_PORT + 19} are all taken: set PORT")


def _web_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # 503 while the worker starts still means the web app is up
    except OSError:
        return False


def _banner(url: str, data_dir: str, redis_line: str) -> str:
    lines = [
        f"Proofing is running:  {url}",
        "Sign in as:           demo / demo-password   (an editor)",
        f"Data:                 {data_dir}",
        f"Redis:                {redis_line}",
        "",
        "Ctrl-C stops everything.",
    ]
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 4) + "+"
    return "\n".join([rule, *(f"|  {line:<{width}}  |" for line in lines), rule])


def _run(supervisor: Supervisor) -> None:
    # Reading the config here also writes DATA_DIR/secret_key once, before the web and worker
    # processes start and would race to create it.
    try:
        config = load_config()
    except ConfigError as exc:
        raise Failure(str(exc)) from exc
    data_dir = Path(config["DATA_DIR"])
    redis_url = config["REDIS_URL"]
    port = _choose_port(dict(os.environ))
    if port != DEFAULT_PORT and not os.environ.get("PORT"):
        supervisor.say(f"port {DEFAULT_PORT} is taken: using {port}")
    # The resolved values, so every part uses the same data directory whatever its cwd.
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "REDIS_URL": redis_url,
        "PYTHONUNBUFFERED": "1",
    }

    if _redis_answers(redis_url):
        redis_line = f"{_public(redis_url)} (already running)"
        supervisor.say(f"using the Redis that answers at {_public(redis_url)}")
    else:
        _start_redis(supervisor, redis_url, data_dir, env)
        redis_line = f"{_public(redis_url)} (started here, data in {data_dir / 'redis'})"

    flask = [sys.executable, "-m", "flask", "--app", "app"]
    supervisor.run_step([*flask, "db", "upgrade"], env)
    supervisor.run_step([*flask, "demo"], env)

    # One machine: the worker embeds beat (-B) rather than running a third process.
    beat = ["-B", "--schedule", str(data_dir / "celerybeat-schedule")]
    supervisor.start("worker", [sys.executable, "-m", *processes.WORKER, *beat], env)
    # No control socket: its default path is one per user (~/.gunicorn), so a second checkout's
    # `make run` would take it over.
    web = processes.web(f"127.0.0.1:{port}")
    supervisor.start("web", [sys.executable, "-m", *web[:-1], "--no-control-socket", web[-1]], env)
    url = f"http://127.0.0.1:{port}"
    supervisor.wait_until(lambda: _web_answers(url), 60, f"the web app at {url}")
    supervisor.say(_banner(url, str(data_dir), redis_line))
    supervisor.wait_until(lambda: False, float("inf"), "Ctrl-C")


def main() -> None:
    supervisor = Supervisor()

    def request_stop(signum: int, _frame: object) -> None:
        supervisor.stop_requested.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    status = 0
    try:
        _run(supervisor)
    except Stopped:
        pass
    except Failure as exc:
        supervisor.say(f"error: {exc}")
        status = 1
    finally:
        supervisor.stop_all()
    supervisor.say("stopped")
    sys.exit(status)


if __name__ == "__main__":
    main()
