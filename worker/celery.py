"""The worker's entry point: the Celery app of a Flask app built from the environment.

`celery -A worker worker` imports this module (Celery looks for `worker.celery.app`).
"""

import os

# One Tesseract thread per process: the worker runs one page per process in parallel, and
# Tesseract's OpenMP threads only slow parallel pages down. Set before any engine runs.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

from app import create_app

flask_app = create_app()
app = flask_app.extensions["celery"]
app.autodiscover_tasks(["worker"], force=True)
