"""The Celery worker: `celery -A worker worker` finds the app in worker/celery.py.

Importing this package does nothing, so the web app can be imported without building a
worker, and tests can build their own.
"""
