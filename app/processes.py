"""The command lines of the long-running processes: the one place they are spelt.

`make run` (app/devserver.py) and the tests start them from here; the Dockerfile and
docker-compose.yml spell them in their own syntax, and tests/unit/test_processes.py checks that
those say the same.
"""

from __future__ import annotations

#: The web app. Two processes of four threads: a status poll is a few milliseconds, and a
#: second process keeps answering while one is busy with an upload.
WEB = ["gunicorn", "-w", "2", "--threads", "4", "app:create_app()"]

#: The Celery worker, consuming every queue of celeryconfig.py (no -Q); one process per core
#: is Celery's default concurrency.
WORKER = ["celery", "-A", "worker", "worker", "--loglevel", "INFO"]

#: Celery beat: the job watchdog and the clean-up (exactly one per deployment).
BEAT = ["celery", "-A", "worker", "beat", "--loglevel", "INFO"]

#: Flower, the Celery dashboard.
FLOWER = ["celery", "-A", "worker", "flower", "--port=5555"]


def web(bind: str) -> list[str]:
    """The web app's command, listening on `bind` (host:port)."""
    return [*WEB[:-1], "-b", bind, WEB[-1]]
