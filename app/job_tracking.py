"""The Redis record of running jobs: every key name, TTL and JSON shape lives here.

A job is N pages with a state each; batch OCR, exports and search-and-replace are all such
jobs and are tracked alike. Only the key prefixes come from the kind (`TRACKED`):

- ``<record prefix>:<slug>`` (``ocr_task:<slug>``, ``export_task:<slug>``, ...): JSON
  ``{"task_id", "started_at", "project_slug", "total", ...}`` plus the kind's own fields
  (OCR: ``engine``, ``language``; export: ``format``). Written with SET NX (one job of a kind
  per project, whoever clicks first), TTL ``ttl`` renewed on progress, deleted by name when the
  job ends.
- ``<job prefix>:<task_id>:pages``: one byte per page of the job, its state (`STATE_CODES`).
- ``<job prefix>:<task_id>:progress``: hash of counters (finished, done, failed, skipped,
  cancelled, total, inflight) and times (first_started, last_progress).
- ``<job prefix>:<task_id>:errors``: hash position -> reason, failed and skipped pages only.
- ``<job prefix>:<task_id>:running``: hash position -> "<worker>|<heartbeat time>" for the
  pages being worked on; the heartbeat is renewed while the work runs.
- ``<job prefix>:<task_id>:sending``: hash position -> time, for pages taken to be sent to the
  broker and not yet confirmed sent.
- ``<job prefix>:<task_id>:assembling``: the worker assembling a finished job's result (an
  export's file), SET NX with a short TTL that its heartbeat renews: the assembly is asked for
  again by every status read until the job ends, and must run once at a time.
- ``<job prefix>:<task_id>:assembly_sent``: set (with a TTL) when the assembly task is sent, so
  that it is sent again only once that TTL has passed without the job ending.

A job sends only a window of its pages to the broker at a time (app/services/jobs/window.py):
`take` moves up to that many waiting pages to "queued" and notes them in ``sending``;
`confirm_sent` clears that note once they are published. The broker's messages are only
nudges: the page states here decide what runs. A page whose heartbeat stopped, or whose send
was never confirmed, goes back to waiting (`release_lost`) and is sent again; a message that
arrives twice, or for a page that is running elsewhere or finished, does nothing.

Every change of state runs in one Lua script, so it is atomic and idempotent: a page already
finished is never counted twice, and exactly one caller learns that it finished the last page.
Nothing here scans keys.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import redis

from app.models import ItemState, JobKind

log = logging.getLogger(__name__)

#: Byte per page in the ``pages`` string. WAITING and SENT are both "queued" to people: a page
#: that waits its turn in the job's window, or in the broker.
STATE_CODES: dict[int, ItemState] = {
    b"p"[0]: ItemState.PREPARING,
    b"w"[0]: ItemState.QUEUED,
    b"q"[0]: ItemState.QUEUED,
    b"r"[0]: ItemState.RUNNING,
    b"d"[0]: ItemState.DONE,
    b"f"[0]: ItemState.FAILED,
    b"s"[0]: ItemState.SKIPPED,
    b"c"[0]: ItemState.CANCELLED,
}
OUTCOME_CODES = {ItemState.DONE: "d", ItemState.FAILED: "f", ItemState.SKIPPED: "s"}
#: How long the per-job keys stay after the job ends, for a late poll or a redelivered task.
ENDED_JOB_KEYS_TTL = 600
#: Characters of a reason kept in Redis (the database keeps its own copy).
MAX_REASON = 500


@dataclass(frozen=True)
class TrackedKind:
    """The key prefixes of one kind of job."""

    record_prefix: str
    job_prefix: str
    #: Fields of the record besides the common ones, which a record of this kind must have.
    required: tuple[str, ...] = ()

    def record_key(self, slug: str) -> str:
        return f"{self.record_prefix}:{slug}"

    def pages_key(self, task_id: str) -> str:
        return f"{self.job_prefix}:{task_id}:pages"

    def progress_key(self, task_id: str) -> str:
        return f"{self.job_prefix}:{task_id}:progress"

    def errors_key(self, task_id: str) -> str:
        return f"{self.job_prefix}:{task_id}:errors"

    def running_key(self, task_id: str) -> str:
        return f"{self.job_prefix}:{task_id}:running"

    def sending_key(self, task_id: str) -> str:
        return f"{self.job_prefix}:{task_id}:sending"

    def assembling_key(self, task_id: str) -> str:
        return f"{self.job_prefix}:{task_id}:assembling"

    def assembly_sent_key(self, task_id: str) -> str:
        return f"{self.job_prefix}:{task_id}:assembly_sent"

    def job_keys(self, task_id: str) -> list[str]:
        """Every per-job key, in the order the scripts take them."""
        return [
            self.pages_key(task_id),
            self.progress_key(task_id),
            self.errors_key(task_id),
            self.running_key(task_id),
            self.sending_key(task_id),
        ]


TRACKED: dict[JobKind, TrackedKind] = {
    JobKind.OCR: TrackedKind("ocr_task", "ocr_job", ("engine",)),
    JobKind.EXPORT: TrackedKind("export_task", "export_job", ("format",)),
    JobKind.REPLACE: TrackedKind("replace_task", "replace_job"),
}


def job_key(slug: str, kind: JobKind = JobKind.OCR) -> str:
    """``ocr_task:<slug>`` (or the record key of another kind): what operators GET."""
    return TRACKED[kind].record_key(slug)


def pages_key(task_id: str, kind: JobKind = JobKind.OCR) -> str:
    return TRACKED[kind].pages_key(task_id)


def progress_key(task_id: str, kind: JobKind = JobKind.OCR) -> str:
    return TRACKED[kind].progress_key(task_id)


def errors_key(task_id: str, kind: JobKind = JobKind.OCR) -> str:
    return TRACKED[kind].errors_key(task_id)


class CorruptRecord(ValueError):
    """What is stored under a record key is not a record this code wrote."""


@dataclass(frozen=True)
class JobRecord:
    """The JSON stored under ``<record prefix>:<slug>``. Empty kind fields are left out."""

    task_id: str
    started_at: str
    project_slug: str
    total: int = 0
    #: OCR's engine and language; an export's format.
    engine: str = ""
    language: str = ""
    format: str = ""

    def to_json(self) -> str:
        data: dict[str, Any] = {"task_id": self.task_id}
        for name in ("engine", "format", "started_at", "project_slug", "language"):
            if value := getattr(self, name):
                data[name] = value
        data["total"] = self.total
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str, required: tuple[str, ...] = ()) -> JobRecord:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: a hand-made value nested deeper than the parser goes.
            raise CorruptRecord(f"not JSON: {type(exc).__name__}") from exc
        if not isinstance(data, dict):
            raise CorruptRecord("not a JSON object")
        for name in ("task_id", "started_at", "project_slug", *required):
            if not isinstance(data.get(name), str) or not data[name]:
                raise CorruptRecord(f"missing or invalid {name!r}")
        total = data.get("total", 0)
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise CorruptRecord("invalid 'total'")
        optional = {}
        for name in ("engine", "language", "format"):
            value = data.get(name, "")
            if not isinstance(value, str):
                raise CorruptRecord(f"invalid {name!r}")
            optional[name] = value
        return cls(
            task_id=data["task_id"],
            started_at=data["started_at"],
            project_slug=data["project_slug"],
            total=total,
            **optional,
        )


@dataclass(frozen=True)
class JobProgress:
    """A snapshot of a running job, read in one round trip whatever its page count."""

    record: JobRecord
    #: The ``pages`` string as read: one state byte per page (STATE_CODES).
    states_raw: bytes
    errors: dict[int, str]
    counts: dict[str, int] = field(default_factory=dict)
    first_started: float | None = None
    last_progress: float | None = None

    @property
    def finished(self) -> int:
        return self.counts.get("finished", 0)

    @cached_property
    def page_states(self) -> list[ItemState]:
        """The state of each page, in job order (decoded once, when first asked for)."""
        return decode_page_states(self.states_raw, self.record.total)


@dataclass(frozen=True)
class PageFinish:
    #: False when the page had already finished (a redelivered task) or the job is gone.
    counted: bool
    #: True for exactly one caller: the one that finished the job's last page.
    last: bool


@dataclass(frozen=True)
class RunningPage:
    position: int
    worker: str
    heartbeat: float


# A record is ours to delete only if it names our task: a new job may have taken the slug.
_OWNS_RECORD = """
local function owns(key, task_id)
  local raw = redis.call('GET', key)
  if not raw then return false end
  local ok, rec = pcall(cjson.decode, raw)
  return ok and type(rec) == 'table' and rec['task_id'] == task_id
end
"""

# KEYS: record, pages, progress; ARGV: record json, ttl, total, now, initial state byte
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('SET', KEYS[2], string.rep(ARGV[5], tonumber(ARGV[3])), 'EX', ARGV[2])
  redis.call('HSET', KEYS[3], 'total', ARGV[3], 'finished', 0, 'done', 0, 'failed', 0,
             'skipped', 0, 'cancelled', 0, 'inflight', 0, 'last_progress', ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  return false
end
return redis.call('GET', KEYS[1])
"""

# KEYS: pages, progress; ARGV: now, positions... Pages rendered: preparing -> waiting.
_MAKE_READY = """
local n = 0
for i = 2, #ARGV do
  local pos = tonumber(ARGV[i])
  if redis.call('GETRANGE', KEYS[1], pos, pos) == 'p' then
    redis.call('SETRANGE', KEYS[1], pos, 'w')
    n = n + 1
  end
end
if n > 0 then redis.call('HSET', KEYS[2], 'last_progress', ARGV[1]) end
return n
"""

# KEYS: pages, progress, sending; ARGV: window, now. Waiting -> queued, up to the window.
_TAKE = """
local states = redis.call('GET', KEYS[1])
if not states then return {} end
local inflight = tonumber(redis.call('HGET', KEYS[2], 'inflight') or '0')
local room = tonumber(ARGV[1]) - inflight
local taken = {}
local from = 1
while room > 0 do
  local at = string.find(states, 'w', from, true)
  if not at then break end
  redis.call('SETRANGE', KEYS[1], at - 1, 'q')
  redis.call('HSET', KEYS[3], at - 1, ARGV[2])
  taken[#taken + 1] = at - 1
  room = room - 1
  from = at + 1
end
if #taken > 0 then
  redis.call('HINCRBY', KEYS[2], 'inflight', #taken)
  redis.call('EXPIRE', KEYS[3], redis.call('TTL', KEYS[1]))
end
return taken
"""

# KEYS: pages, progress, running, sending; ARGV: position, worker, now, stale after
_MARK_RUNNING = """
local pos = tonumber(ARGV[1])
local cur = redis.call('GETRANGE', KEYS[1], pos, pos)
if cur == 'r' then
  local held = redis.call('HGET', KEYS[3], ARGV[1])
  -- A page waiting out a retry's countdown is taken by whichever process gets the retry.
  if held and string.sub(held, 1, 9) ~= 'retrying|' then
    local sep = string.find(held, '|', 1, true)
    local holder = string.sub(held, 1, sep - 1)
    local beat = tonumber(string.sub(held, sep + 1))
    if holder ~= ARGV[2] and tonumber(ARGV[3]) - beat < tonumber(ARGV[4]) then return 0 end
  end
elseif cur == 'q' or cur == 'w' then
  redis.call('SETRANGE', KEYS[1], pos, 'r')
  if cur == 'w' then redis.call('HINCRBY', KEYS[2], 'inflight', 1) end
  redis.call('HSETNX', KEYS[2], 'first_started', ARGV[3])
else
  return 0
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
redis.call('EXPIRE', KEYS[3], redis.call('TTL', KEYS[1]))
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[2], 'last_progress', ARGV[3])
return 1
"""

# KEYS: running, progress; ARGV: worker, now, positions...
_HEARTBEAT = """
local n = 0
for i = 3, #ARGV do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1] .. '|' .. ARGV[2])
    n = n + 1
  end
end
if n > 0 then redis.call('HSET', KEYS[2], 'last_progress', ARGV[2]) end
return n
"""

_FINISH_PAGE = (
    _OWNS_RECORD
    + """
-- KEYS: pages, progress, errors, running, sending, record
-- ARGV: position, code, outcome, reason, now, ttl, task_id
local cur = redis.call('GETRANGE', KEYS[1], ARGV[1], ARGV[1])
if cur ~= 'q' and cur ~= 'r' and cur ~= 'w' then return 0 end
redis.call('SETRANGE', KEYS[1], ARGV[1], ARGV[2])
if cur ~= 'w' then redis.call('HINCRBY', KEYS[2], 'inflight', -1) end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
local finished = redis.call('HINCRBY', KEYS[2], 'finished', 1)
redis.call('HSET', KEYS[2], 'last_progress', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
if owns(KEYS[6], ARGV[7]) then redis.call('EXPIRE', KEYS[6], ARGV[6]) end
if finished >= tonumber(redis.call('HGET', KEYS[2], 'total')) then return 2 end
return 1
"""
)

# KEYS: pages, progress, running, sending; ARGV: now, heartbeat stale after, send stale after.
# Pages whose worker stopped beating, and pages whose send was never confirmed, wait again.
_RELEASE_LOST = """
local now = tonumber(ARGV[1])
local released = 0
local running = redis.call('HGETALL', KEYS[3])
for i = 1, #running, 2 do
  local pos = tonumber(running[i])
  local held = running[i + 1]
  local beat = tonumber(string.sub(held, string.find(held, '|', 1, true) + 1))
  if now - beat >= tonumber(ARGV[2]) then
    redis.call('HDEL', KEYS[3], running[i])
    if redis.call('GETRANGE', KEYS[1], pos, pos) == 'r' then
      redis.call('SETRANGE', KEYS[1], pos, 'w')
      redis.call('HINCRBY', KEYS[2], 'inflight', -1)
      released = released + 1
    end
  end
end
local sending = redis.call('HGETALL', KEYS[4])
for i = 1, #sending, 2 do
  local pos = tonumber(sending[i])
  if now - tonumber(sending[i + 1]) >= tonumber(ARGV[3]) then
    redis.call('HDEL', KEYS[4], sending[i])
    if redis.call('GETRANGE', KEYS[1], pos, pos) == 'q' then
      redis.call('SETRANGE', KEYS[1], pos, 'w')
      redis.call('HINCRBY', KEYS[2], 'inflight', -1)
      released = released + 1
    end
  end
end
return released
"""

_CANCEL = (
    _OWNS_RECORD
    + """
-- KEYS: pages, progress, sending, record; ARGV: task_id, now
-- Every page not yet running is cancelled; running pages finish and keep their text.
local states = redis.call('GET', KEYS[1])
local n = 0
if states then
  local sent = 0
  for _ in string.gmatch(states, 'q') do sent = sent + 1 end
  local out = string.gsub(states, '[pwq]', 'c')
  for _ in string.gmatch(states, '[pwq]') do n = n + 1 end
  redis.call('SET', KEYS[1], out, 'KEEPTTL')
  redis.call('HINCRBY', KEYS[2], 'cancelled', n)
  redis.call('HINCRBY', KEYS[2], 'finished', n)
  -- Only when non-zero: Lua's -0 reaches Redis as "-0", which HINCRBY refuses.
  if sent > 0 then redis.call('HINCRBY', KEYS[2], 'inflight', -sent) end
  redis.call('HSET', KEYS[2], 'last_progress', ARGV[2])
  redis.call('DEL', KEYS[3])
end
if owns(KEYS[4], ARGV[1]) then redis.call('DEL', KEYS[4]) end
return n
"""
)

_END = (
    _OWNS_RECORD
    + """
-- KEYS: record, then the per-job keys; ARGV: task_id, ttl of the ended job's keys
local deleted = 0
if owns(KEYS[1], ARGV[1]) then deleted = redis.call('DEL', KEYS[1]) end
for i = 2, #KEYS do
  if redis.call('TTL', KEYS[i]) > tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[i], ARGV[2]) end
end
return deleted
"""
)

_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_EXPIRE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class JobTracker:
    """Reads and writes the Redis record of one kind of job. One per Redis client and kind."""

    def __init__(self, client: redis.Redis, kind: JobKind, ttl: int = 24 * 3600) -> None:
        self.redis = client
        self.kind = kind
        self.keys = TRACKED[kind]
        self.ttl = ttl
        self._claim = client.register_script(_CLAIM)
        self._make_ready = client.register_script(_MAKE_READY)
        self._take = client.register_script(_TAKE)
        self._mark_running = client.register_script(_MARK_RUNNING)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._finish_page = client.register_script(_FINISH_PAGE)
        self._release_lost = client.register_script(_RELEASE_LOST)
        self._cancel = client.register_script(_CANCEL)
        self._end = client.register_script(_END)
        self._delete_if_equal = client.register_script(_DELETE_IF_EQUAL)
        self._expire_if_equal = client.register_script(_EXPIRE_IF_EQUAL)

    def record_key(self, slug: str) -> str:
        return self.keys.record_key(slug)

    # -- starting --------------------------------------------------------------------------

    def claim(self, record: JobRecord, *, preparing: bool = False) -> JobRecord | None:
        """Record `record` as the project's running job of this kind, unless one is already.

        Returns None when the claim succeeded, else the job already running (the caller shows
        its progress). Record, page states and counters appear in one step. With `preparing`,
        the pages are not rendered yet and wait for `make_ready`.
        """
        # A corrupt record in the way is discarded and the claim tried again; a few tries
        # are enough unless something keeps writing garbage under the key.
        for _attempt in range(3):
            existing = self._claim(
                keys=[
                    self.record_key(record.project_slug),
                    self.keys.pages_key(record.task_id),
                    self.keys.progress_key(record.task_id),
                ],
                args=[
                    record.to_json(),
                    self.ttl,
                    record.total,
                    time.time(),
                    "p" if preparing else "w",
                ],
            )
            if existing is None:
                return None
            try:
                return JobRecord.from_json(existing, self.keys.required)
            except CorruptRecord:
                log.warning(
                    "replacing corrupt %s: %r", self.record_key(record.project_slug), existing[:200]
                )
                self._discard_corrupt(record.project_slug, existing)
        raise CorruptRecord(f"{self.record_key(record.project_slug)} keeps being overwritten")

    def make_ready(self, record: JobRecord, positions: list[int]) -> int:
        """Pages whose images now exist: preparing -> waiting. Returns how many changed."""
        if not positions:
            return 0
        return int(
            self._make_ready(
                keys=[self.keys.pages_key(record.task_id), self.keys.progress_key(record.task_id)],
                args=[time.time(), *positions],
            )
        )

    # -- reading ---------------------------------------------------------------------------

    def current(self, slug: str) -> JobRecord | None:
        """The project's running job of this kind, or None. A corrupt record is deleted."""
        raw = self.redis.get(self.record_key(slug))
        if raw is None:
            return None
        try:
            return JobRecord.from_json(raw, self.keys.required)
        except CorruptRecord as exc:
            log.warning("deleting corrupt %s (%s): %r", self.record_key(slug), exc, raw[:200])
            self._discard_corrupt(slug, raw)
            return None

    def progress_of(self, record: JobRecord) -> JobProgress:
        """Page states, counters and reasons: one pipelined round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.pages_key(record.task_id))
        pipe.hgetall(self.keys.progress_key(record.task_id))
        pipe.hgetall(self.keys.errors_key(record.task_id))
        states_raw, progress_raw, errors_raw = pipe.execute()
        return JobProgress(
            record=record,
            states_raw=states_raw or b"",
            errors=_decode_errors(errors_raw),
            counts=_decode_counts(progress_raw),
            first_started=_float(progress_raw.get(b"first_started")),
            last_progress=_float(progress_raw.get(b"last_progress")),
        )

    def running_pages(self, record: JobRecord) -> list[RunningPage]:
        """Who runs which page, with their last heartbeat."""
        raw = self.redis.hgetall(self.keys.running_key(record.task_id))
        pages = []
        for position, held in raw.items():
            worker, _, beat = held.decode("utf-8", "replace").rpartition("|")
            try:
                pages.append(RunningPage(int(position), worker, float(beat)))
            except ValueError:
                continue
        return sorted(pages, key=lambda page: page.position)

    # -- sending ---------------------------------------------------------------------------

    def take(self, record: JobRecord, window: int) -> list[int]:
        """Move waiting pages to queued until `window` pages are queued or running; returns
        the positions taken, which the caller sends and then passes to `confirm_sent`."""
        taken = self._take(
            keys=[
                self.keys.pages_key(record.task_id),
                self.keys.progress_key(record.task_id),
                self.keys.sending_key(record.task_id),
            ],
            args=[window, time.time()],
        )
        return [int(position) for position in taken]

    def confirm_sent(self, record: JobRecord, positions: list[int]) -> None:
        if positions:
            self.redis.hdel(self.keys.sending_key(record.task_id), *positions)

    # -- the worker's side -----------------------------------------------------------------

    def mark_running(
        self, record: JobRecord, position: int, worker: str = "", stale_after: float = 30
    ) -> bool:
        """Note that `worker` starts the page. False if the page must not run: finished,
        cancelled, not ready, or running elsewhere with a heartbeat younger than
        `stale_after` seconds (a duplicate message)."""
        started = self._mark_running(
            keys=[
                self.keys.pages_key(record.task_id),
                self.keys.progress_key(record.task_id),
                self.keys.running_key(record.task_id),
                self.keys.sending_key(record.task_id),
            ],
            args=[position, worker or "-", time.time(), stale_after],
        )
        return bool(started)

    def heartbeat(self, record: JobRecord, positions: list[int], worker: str) -> int:
        """Renew `worker`'s heartbeat on the pages it runs; returns how many it still holds."""
        return int(
            self._heartbeat(
                keys=[
                    self.keys.running_key(record.task_id),
                    self.keys.progress_key(record.task_id),
                ],
                args=[worker or "-", time.time(), *positions],
            )
        )

    def defer(self, record: JobRecord, position: int, seconds: float) -> None:
        """The page's task retries in `seconds`: keep the page from being given back as lost
        meanwhile, and let the retry take it whichever process runs it."""
        self.redis.hset(
            self.keys.running_key(record.task_id), position, f"retrying|{time.time() + seconds}"
        )

    def finish_page(
        self, record: JobRecord, position: int, outcome: ItemState | str, reason: str = ""
    ) -> PageFinish:
        """Record a page's outcome (done, failed, skipped); idempotent per page."""
        outcome = ItemState(outcome)
        result = self._finish_page(
            keys=[
                *self.keys.job_keys(record.task_id),
                self.record_key(record.project_slug),
            ],
            args=[
                position,
                OUTCOME_CODES[outcome],
                outcome.value,
                reason[:MAX_REASON],
                time.time(),
                self.ttl,
                record.task_id,
            ],
        )
        return PageFinish(counted=result > 0, last=result == 2)

    def release_lost(self, record: JobRecord, heartbeat_stale: float, send_stale: float) -> int:
        """Pages whose worker stopped beating `heartbeat_stale` seconds ago, and pages taken
        for sending `send_stale` seconds ago and never confirmed, wait to be sent again."""
        return int(
            self._release_lost(
                keys=[
                    self.keys.pages_key(record.task_id),
                    self.keys.progress_key(record.task_id),
                    self.keys.running_key(record.task_id),
                    self.keys.sending_key(record.task_id),
                ],
                args=[time.time(), heartbeat_stale, send_stale],
            )
        )

    # -- ending ----------------------------------------------------------------------------

    def cancel(self, record: JobRecord) -> int:
        """Cancel every page not yet running and delete the record. Returns pages cancelled."""
        return int(
            self._cancel(
                keys=[
                    self.keys.pages_key(record.task_id),
                    self.keys.progress_key(record.task_id),
                    self.keys.sending_key(record.task_id),
                    self.record_key(record.project_slug),
                ],
                args=[record.task_id, time.time()],
            )
        )

    def end(self, record: JobRecord) -> bool:
        """Delete the job's record by name, if it is still this job's; True if deleted now.

        The per-job keys are kept briefly (ENDED_JOB_KEYS_TTL) so that a poll racing the end
        still reads a consistent state, then expire.
        """
        deleted = self._end(
            keys=[self.record_key(record.project_slug), *self.keys.job_keys(record.task_id)],
            args=[record.task_id, ENDED_JOB_KEYS_TTL],
        )
        return bool(deleted)

    # -- assembling the result of a finished job ---------------------------------------------

    def request_assembly(self, task_id: str, every: float) -> bool:
        """Whether to send the job's assembly now: True at most once per `every` seconds."""
        key = self.keys.assembly_sent_key(task_id)
        return bool(self.redis.set(key, "1", nx=True, ex=max(1, round(every))))

    def claim_assembly(self, task_id: str, worker: str, ttl: float) -> bool:
        """Take the job's assembly for `worker` for `ttl` seconds; False if another holds it."""
        key = self.keys.assembling_key(task_id)
        return bool(self.redis.set(key, worker or "-", nx=True, ex=max(1, round(ttl))))

    def renew_assembly(self, task_id: str, worker: str, ttl: float) -> bool:
        """Keep holding the assembly (the heartbeat of a long one); False if it was lost."""
        key = self.keys.assembling_key(task_id)
        return bool(self._expire_if_equal(keys=[key], args=[worker or "-", max(1, round(ttl))]))

    def release_assembly(self, task_id: str, worker: str) -> None:
        self._delete_if_equal(keys=[self.keys.assembling_key(task_id)], args=[worker or "-"])

    def forget(self, slug: str, task_id: str) -> None:
        """Delete every key of a job at once (its project is being deleted)."""
        record = self.current(slug)
        keys = [
            *self.keys.job_keys(task_id),
            self.keys.assembling_key(task_id),
            self.keys.assembly_sent_key(task_id),
        ]
        if record is not None and record.task_id == task_id:
            keys.append(self.record_key(slug))
        self.redis.delete(*keys)

    def _discard_corrupt(self, slug: str, raw: bytes) -> None:
        self._delete_if_equal(keys=[self.record_key(slug)], args=[raw])


def decode_page_states(raw: bytes, total: int) -> list[ItemState]:
    """Page states from the state string; missing or unknown bytes read as queued."""
    states = [STATE_CODES.get(b, ItemState.QUEUED) for b in raw[:total]]
    states.extend(ItemState.QUEUED for _ in range(total - len(states)))
    return states


_TIMES = (b"first_started", b"last_progress")


def _decode_counts(raw: dict[Any, Any]) -> dict[str, int]:
    counts = {}
    for key, value in raw.items():
        if key in _TIMES:
            continue
        try:
            counts[key.decode("utf-8", "replace")] = int(value)
        except ValueError:
            continue
    return counts


def _decode_errors(raw: dict[Any, Any]) -> dict[int, str]:
    errors = {}
    for key, value in raw.items():
        try:
            errors[int(key)] = value.decode("utf-8", "replace")
        except ValueError:
            continue
    return errors


def _float(raw: bytes | None) -> float | None:
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
