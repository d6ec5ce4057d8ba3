"""Binds a Celery app to a Flask app, the way Flask's own Celery example does.

Every Celery setting lives in celeryconfig.py; only the broker and backend URLs come from the
Flask config, so a test (or REDIS_URL) can point both at another Redis.
"""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask

from app import task_names
from app.config import page_task_time_limit


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object("celeryconfig")
    celery_app.conf.update(
        broker_url=app.config["CELERY_BROKER_URL"],
        result_backend=app.config["CELERY_RESULT_BACKEND"],
    )
    # A hung engine becomes a failed page, and the broker redelivers a lost page only after
    # the page could no longer be running anywhere (see celeryconfig.py).
    # The engine stops itself at the limit (Tesseract's own deadline, and its helper killed 3 s
    # later if it does not stop: app/engines/loaded_tesseract.py); the soft limit
    # is the backstop for an engine that does not, and the hard limit for one that ignores it.
    limit = app.config["OCR_PAGE_TIME_LIMIT"]
    celery_app.conf.task_annotations = {
        task_names.OCR_PAGE: {
            "soft_time_limit": limit + 5,
            "time_limit": page_task_time_limit(app.config),
        },
        # A format stuck on one page (a huge scan) fails that page, and so the export, with
        # a reason, rather than beating for ever.
        task_names.EXPORT_PAGE: {
            "soft_time_limit": limit + 5,
            "time_limit": page_task_time_limit(app.config),
        },
    }
    celery_app.conf.broker_transport_options = {
        **celery_app.conf.broker_transport_options,
        "visibility_timeout": limit + 60,
    }
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
