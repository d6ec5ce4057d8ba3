"""Every Celery setting of the project, each with why it has its value.

Task and queue names come from app/task_names.py, their one definition.

Loaded by name (`config_from_object("celeryconfig")`); the broker and result backend URLs come
from REDIS_URL through the Flask config, and the page time limit from OCR_PAGE_TIME_LIMIT
(app/celery_app.py), because both are deployment settings rather than code.
"""

from kombu import Queue

from app import task_names

# Page tasks report progress through app/job_tracking.py, so nobody reads their results: not
# storing them keeps Redis memory per job to a few bytes per page.
task_ignore_result = True
# Still record results for the tasks that have none set explicitly as useful (none today).
result_expires = 3600

# Every queue the project sends to. A worker started without -Q consumes all of them, so the
# plain `celery -A worker worker` runs whole jobs; `-Q ocr` makes a machine that only OCRs.
task_queues = [Queue(name) for name in task_names.ALL_QUEUES]
task_default_queue = task_names.DEFAULT_QUEUE
# Batch OCR pages on their own queue; what a person waits on on the interactive one. A page
# OCR'd again from the editor is sent to the interactive queue explicitly (app/queue.py).
task_routes = {
    task_names.OCR_PAGE: {"queue": task_names.OCR_QUEUE},
    task_names.SPLIT_SOURCE: {"queue": task_names.INTERACTIVE_QUEUE},
    task_names.RENDER_PAGES: {"queue": task_names.INTERACTIVE_QUEUE},
    # A proofreader waits on the page's new OCR in the editor.
    task_names.OCR_PAGE_PREVIEW: {"queue": task_names.INTERACTIVE_QUEUE},
    # Export pages and their assembly are short and nobody's keystroke waits on them: the
    # default queue, named here so that a worker started with -Q knows where they are.
    task_names.EXPORT_PAGE: {"queue": task_names.DEFAULT_QUEUE},
    task_names.ASSEMBLE_EXPORT: {"queue": task_names.DEFAULT_QUEUE},
    # The watchdog recovers the pages of dead workers: it must not wait behind pages.
    task_names.WATCH_JOBS: {"queue": task_names.INTERACTIVE_QUEUE},
}

# A page is acknowledged only once it is done: a worker killed mid-page gives the page back to
# the queue instead of losing it. The page task is idempotent (one revision per job and page).
task_acks_late = True
# A child process killed by the OOM killer or SIGKILL requeues its page instead of failing it.
task_reject_on_worker_lost = True
# Pages take seconds each: a worker must not sit on queued pages while another process idles.
worker_prefetch_multiplier = 1

# JSON only: task arguments are ids and names, never pickled objects.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

# Times in the job records are UTC ISO-8601.
enable_utc = True
timezone = "UTC"

# A worker process that has run many pages is replaced, so a leak in an engine or in the
# rendering libraries can never grow without bound.
worker_max_tasks_per_child = 200

# Publishing must fail fast when Redis is down, so the user sees a 503 rather than a request
# that hangs for minutes.
task_publish_retry = True
task_publish_retry_policy = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
broker_connection_retry_on_startup = True
# A worker polls its queues in the order of task_queues (interactive, default, ocr) rather than
# in turn, so a free process always takes interactive work first. (The visibility timeout is
# set from OCR_PAGE_TIME_LIMIT in app/celery_app.py.)
broker_transport_options = {"queue_order_strategy": "priority"}
broker_connection_timeout = 2
redis_socket_connect_timeout = 2
redis_socket_timeout = 5

# `celery events`, Flower and /healthz see workers; events cost nothing while nobody listens.
worker_send_task_events = True
task_send_sent_event = False

# Live workers ask for the job watchdog every few seconds themselves (app/worker_presence.py);
# beat runs it too, once a minute, so that it runs even while no worker is alive to ask.
beat_schedule = {
    "watch-jobs": {"task": task_names.WATCH_JOBS, "schedule": 60.0},
    # Retention: old staged uploads, expired export files, old per-page job rows.
    "clean-up": {"task": task_names.CLEAN_UP, "schedule": 3600.0},
}
