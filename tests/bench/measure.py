"""Instruments of the benchmark: CPU accounting, peak memory of process trees, and CER."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cores() -> int:
    return len(os.sched_getaffinity(0))


# -- CPU ---------------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle since boot, summed over cores."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    # guest time is already counted in user/nice
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def harness_cpu_seconds() -> float:
    """CPU of this process itself: the benchmark's client, samplers and bookkeeping."""
    return sum(os.times()[:2])


def children_cpu_seconds() -> float:
    """CPU of every child this process waited for (and of the children they waited for)."""
    return sum(os.times()[2:4])


def tree_cpu_seconds(root_pids: list[int]) -> dict[tuple[int, float], float]:
    """CPU seconds per live process of the trees, keyed by (pid, start time)."""
    seconds = {}
    for proc in _tree(root_pids):
        try:
            times = proc.cpu_times()
            key = (proc.pid, proc.create_time())
        except psutil.Error:
            continue
        seconds[key] = times.user + times.system + times.children_user + times.children_system
    return seconds


def _tree(root_pids: list[int]) -> list[psutil.Process]:
    return [proc for proc, _depth in _tree_depths(root_pids)]


def _tree_depths(root_pids: list[int]) -> list[tuple[psutil.Process, int]]:
    """Every process of the trees with its depth below its root (the root is 0)."""
    found = []
    todo = []
    for pid in root_pids:
        try:
            todo.append((psutil.Process(pid), 0))
        except psutil.Error:
            continue
    while todo:
        proc, depth = todo.pop()
        found.append((proc, depth))
        try:
            todo.extend((child, depth + 1) for child in proc.children())
        except psutil.Error:
            continue
    return found


@dataclass
class CpuShare:
    """Wall time of a phase, the CPU the contender used, and what everyone else used."""

    wall: float = 0.0
    #: The contender's processes: the children waited for, or the live trees watched.
    own_cpu: float = 0.0
    #: This process (the client, the samplers): neither the contender nor someone else.
    harness_cpu: float = 0.0
    machine_cpu: float = 0.0
    cores: int = field(default_factory=cores)

    @property
    def others_share(self) -> float:
        """Share of the machine's capacity used by processes that are not the benchmark's."""
        if self.wall <= 0:
            return 0.0
        others = self.machine_cpu - self.own_cpu - self.harness_cpu
        return max(0.0, others) / (self.wall * self.cores)


@dataclass
class _Snapshot:
    at: float
    machine: float
    harness: float
    children: float
    tree: dict[tuple[int, float], float]


class CpuMeter:
    """`with CpuMeter(lambda: [pids]) as share:` measures one phase.

    Short-lived processes are counted when they are waited for (the children's times);
    long-lived ones (the stack) by the difference of their own counters over the phase.
    `mark(name)` starts a named part of the phase; `parts` then holds each part's share.
    """

    def __init__(self, live_roots: Callable[[], list[int]] = list) -> None:
        self.live_roots = live_roots
        self.share = CpuShare()
        self.parts: dict[str, CpuShare] = {}
        self._marks: list[tuple[str, _Snapshot]] = []

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(
            time.monotonic(),
            machine_busy_seconds(),
            harness_cpu_seconds(),
            children_cpu_seconds(),
            tree_cpu_seconds(self.live_roots()),
        )

    def mark(self, name: str) -> None:
        self._marks.append((name, self._snapshot()))

    def __enter__(self) -> CpuShare:
        self._start = self._snapshot()
        return self.share

    def __exit__(self, *exc: object) -> None:
        end = self._snapshot()
        self.share = _between(self._start, end, self.share)
        bounds = self._marks + [("", end)]
        for (name, begin), (_next, finish) in zip(bounds, bounds[1:], strict=False):
            self.parts[name] = _between(begin, finish, CpuShare())


def _between(begin: _Snapshot, end: _Snapshot, share: CpuShare) -> CpuShare:
    tree = sum(v - begin.tree.get(k, 0.0) for k, v in end.tree.items())
    share.wall = end.at - begin.at
    share.machine_cpu = end.machine - begin.machine
    share.harness_cpu = end.harness - begin.harness
    share.own_cpu = end.children - begin.children + tree
    return share


# -- memory ------------------------------------------------------------------------------


def vm_rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class PeakProcess:
    pid: int
    group: str
    name: str
    peak_kib: int = 0
    #: Peak per phase of the run (RssSampler.phase when it was sampled).
    phase_peaks_kib: dict[str, int] = field(default_factory=dict)


class RssSampler(threading.Thread):
    """Samples VmRSS of every process of named trees every `interval` s; keeps the peaks.

    `classify(group, process, depth)` may move a process to another group (e.g. the
    tesseract processes a worker starts), or leave it out by returning None (a process
    forked but not yet exec'd shows its parent's pages as its own).
    """

    def __init__(
        self,
        roots: dict[str, Callable[[], list[int]]],
        classify: Callable[[str, psutil.Process, int], str | None] = (
            lambda group, _proc, _depth: group
        ),
        interval: float = 0.2,
    ) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.roots = roots
        self.classify = classify
        self.interval = interval
        self.processes: dict[tuple[int, float, str], PeakProcess] = {}
        #: Largest sum over one sample of each group's processes.
        self.group_peaks: dict[str, int] = {}
        self.samples = 0
        #: What the run is doing now; peaks are also kept per phase. None: not sampling.
        self.phase: str | None = None
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def sample(self) -> None:
        if self.phase is None:
            return
        totals: dict[str, int] = {}
        for group, root_pids in self.roots.items():
            for proc, depth in _tree_depths(root_pids()):
                rss = vm_rss_kib(proc.pid)
                if rss is None:
                    continue
                try:
                    # Classified at every sample: a forked child becomes tesseract at exec.
                    actual = self.classify(group, proc, depth)
                    if actual is None:
                        continue
                    key = (proc.pid, proc.create_time(), actual)
                    peak = self.processes.get(key)
                    if peak is None:
                        name = " ".join(proc.cmdline()[:4])[:80] or proc.name()
                        peak = PeakProcess(proc.pid, actual, name)
                except psutil.Error:
                    continue
                with self._lock:
                    self.processes[key] = peak
                    peak.peak_kib = max(peak.peak_kib, rss)
                    phase = self.phase or ""
                    peak.phase_peaks_kib[phase] = max(peak.phase_peaks_kib.get(phase, 0), rss)
                totals[actual] = totals.get(actual, 0) + rss
        with self._lock:
            for group, total in totals.items():
                self.group_peaks[group] = max(self.group_peaks.get(group, 0), total)
            self.samples += 1

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(5)

    def peaks(self, group: str) -> list[PeakProcess]:
        with self._lock:
            return sorted(
                (p for p in self.processes.values() if p.group == group),
                key=lambda p: -p.peak_kib,
            )


# -- quality -----------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Whitespace runs collapsed to one space, ends stripped: layout is not what CER judges."""
    return " ".join(text.split())


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), bit-parallel (Myers/Hyyrö).

    One big integer holds a column of the dynamic-programming table, so a page of 5000
    characters costs 5000 integer steps instead of 25 million cell updates.
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    m = len(b)
    mask = (1 << m) - 1
    high = 1 << (m - 1)
    peq: dict[str, int] = {}
    for i, char in enumerate(b):
        peq[char] = peq.get(char, 0) | (1 << i)
    pv, mv, score = mask, 0, m
    for char in a:
        eq = peq.get(char, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
    return score


def character_error_rate(text: str, reference: str) -> float:
    """Levenshtein distance over the reference's length, both normalized."""
    hyp, ref = normalize(text), normalize(reference)
    return levenshtein(hyp, ref) / max(1, len(ref))
