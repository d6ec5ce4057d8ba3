"""Handing work to the Celery worker, and the one error that means the queue is down.

Tasks are sent by name, so the web app never imports the worker's modules; the names are
the contract, spelt once in app/task_names.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import kombu.exceptions
import redis.exceptions
from celery import Celery
from flask import current_app

#: Errors that mean Redis (broker or job records) cannot be reached right now. (A wrong
#: password is a redis ConnectionError too.)
REDIS_DOWN = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
)


P = ParamSpec("P")
R = TypeVar("R")


class QueueUnavailable(RuntimeError):
    """Redis, and with it the task queue, is unreachable: the action cannot be done now."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or "the task queue (Redis) is unreachable")


def celery() -> Celery:
    return current_app.extensions["celery"]


def enqueue(task_name: str, *, queue: str | None = None, **kwargs: Any) -> str:
    """Send one task with keyword arguments; returns its id, or raises QueueUnavailable."""
    # ignore_result: nobody waits on these results, and asking for one would make Celery
    # subscribe to the result backend first, retrying for many seconds when Redis is down.
    options: dict[str, Any] = {"kwargs": kwargs, "ignore_result": True}
    if queue:
        options["queue"] = queue
    try:
        return celery().send_task(task_name, **options).id
    except (*REDIS_DOWN, OSError) as exc:  # the transport may let a raw socket error through
        raise QueueUnavailable(str(exc)) from exc


def send_page(task_name: str, *, queue: str, job_id: str, position: int) -> str:
    """Send the task of one page of a job. The task's id names the job and the page, and its
    group is the job, so Flower and `celery inspect` show which job a task belongs to."""
    try:
        return (
            celery()
            .send_task(
                task_name,
                kwargs={"job_id": job_id, "position": position},
                queue=queue,
                task_id=page_task_id(job_id, position),
                group_id=job_id,
                ignore_result=True,
            )
            .id
        )
    except (*REDIS_DOWN, OSError) as exc:
        raise QueueUnavailable(str(exc)) from exc


def page_task_id(job_id: str, position: int) -> str:
    return f"{job_id}.{position}"


def needs_redis(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a Redis outage inside `func` into QueueUnavailable, which callers expect."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except REDIS_DOWN as exc:
            raise QueueUnavailable(str(exc)) from exc

    return wrapper
