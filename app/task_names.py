"""The name of every Celery task and queue: the one place they are spelt.

The web app sends tasks by name (app/queue.py) so that it never imports the worker; the worker
defines them under these names (worker/tasks.py); celeryconfig.py routes and schedules them.
This module imports nothing, so that each of them can import it.
"""

# -- queues, in the order a worker takes from them (celeryconfig.py) ----------------------

#: Work a person is waiting on: the split of a new upload, one page OCR'd again from the
#: editor. Taken first, so it never waits behind batch pages.
INTERACTIVE_QUEUE = "interactive"
#: Everything else that is short: exports, search and replace, webhooks, housekeeping.
DEFAULT_QUEUE = "celery"
#: Batch OCR pages, a few of each running job at a time (app/services/jobs/window.py).
OCR_QUEUE = "ocr"
#: Every queue the project sends to; a worker started without -Q consumes them all.
ALL_QUEUES = (INTERACTIVE_QUEUE, DEFAULT_QUEUE, OCR_QUEUE)

# -- tasks ---------------------------------------------------------------------------------

SPLIT_SOURCE = "worker.tasks.split_source"
RENDER_PAGES = "worker.tasks.render_pages"
OCR_PAGE = "worker.tasks.ocr_page"
#: One page OCR'd again from the editor, its text kept aside for the proofreader to accept or
#: discard (app/services/page_reocr.py).
OCR_PAGE_PREVIEW = "worker.tasks.ocr_page_preview"
EXPORT_PAGE = "worker.tasks.export_page"
ASSEMBLE_EXPORT = "worker.tasks.assemble_export"
REPLACE_PAGE = "worker.tasks.replace_page"
DELIVER_WEBHOOK = "worker.tasks.deliver_webhook"
#: The watchdog: heartbeats of running pages, jobs' windows, stalled jobs (beat).
WATCH_JOBS = "worker.tasks.watch_jobs"
#: Retention: old staged uploads, export files and per-page job rows (beat, `flask cleanup`).
CLEAN_UP = "worker.tasks.clean_up"
