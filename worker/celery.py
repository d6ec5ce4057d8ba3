"""The worker's entry point: the Celery app of a Flask app built from the environment.

`celery -A worker worker` imports this module (Celery looks for `worker.celery.app`). Once the
worker is ready, its main process announces itself in Redis every few seconds and asks for the
job watchdog now and then (app/worker_presence.py); it stops announcing when it shuts down.
"""

import os

# One Tesseract thread per process: the worker runs one page per process in parallel, and
# Tesseract's OpenMP threads only slow parallel pages down. Set before any engine runs.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

from celery import signals  # noqa: E402

from app import create_app, task_names  # noqa: E402
from app.extensions import db  # noqa: E402
from app.worker_presence import Announcer, this_process_info  # noqa: E402

flask_app = create_app()
app = flask_app.extensions["celery"]
app.autodiscover_tasks(["worker"], force=True)

_announcer: list[Announcer] = []


@signals.worker_ready.connect
def _announce(sender, **_kwargs) -> None:
    queues = tuple(sorted(sender.app.amqp.queues.consume_from))
    info = this_process_info(sender.hostname, queues, int(sender.controller.concurrency))

    def request_watch() -> None:
        app.send_task(task_names.WATCH_JOBS, queue=task_names.INTERACTIVE_QUEUE, ignore_result=True)

    presence = flask_app.extensions["worker_presence"]
    _announcer.append(Announcer(presence, info, request_watch).start())


@signals.worker_shutdown.connect
def _withdraw(**_kwargs) -> None:
    for announcer in _announcer:
        announcer.stop()


@signals.worker_process_init.connect
def _fresh_connections(**_kwargs) -> None:
    # A pool process forked from the main process must not share its database connections.
    with flask_app.app_context():
        db.engine.dispose(close=False)
