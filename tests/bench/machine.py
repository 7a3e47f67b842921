"""How busy the machine was: the load average, and who used the CPU during a run.

Other developers run tests on the same machine. The load average alone cannot tell their work
from ours (a saturated run makes it 2 by itself), so each run also measures, from /proc, the
share of the machine's CPU time spent by the bench's own processes (gunicorn, its PostgreSQL
backends, wrk) and by everything else.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
CPUS = os.cpu_count() or 1


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


def _busy_ticks() -> int:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle


def _pid_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat.rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_ticks(pids) -> int:
    return sum(_pid_ticks(pid) for pid in pids)


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU shares (percent of all cores) between now and ``stop()``.

    ``pids`` (a callable) names the bench's processes. A thread looks at them four times a
    second, so that a process that ends during the run (a recycled gunicorn worker) counts up to
    its last look, and one that starts (its replacement, a new database connection) from zero.
    """

    def __init__(self, pids=None, every: float = 0.25):
        self.pids = pids or (lambda: [])
        self.every = every
        self.t0 = time.monotonic()
        self.busy0 = _busy_ticks()
        self.first = {pid: _pid_ticks(pid) for pid in self.pids()}
        self.last = dict(self.first)
        self.children0 = _children_seconds()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _look(self) -> None:
        for pid in self.pids():
            ticks = _pid_ticks(pid)
            if ticks:
                self.first.setdefault(pid, 0)
                self.last[pid] = ticks

    def _watch(self) -> None:
        while not self._done.wait(self.every):
            self._look()

    def stop(self) -> dict[str, float]:
        self._done.set()
        self._thread.join()
        self._look()
        elapsed = time.monotonic() - self.t0
        busy = (_busy_ticks() - self.busy0) / TICK
        server = sum(max(0, t - self.first[p]) for p, t in self.last.items()) / TICK
        client = _children_seconds() - self.children0  # wrk (waited for) and its threads
        own = server + client
        capacity = elapsed * CPUS or 1.0
        return {
            "server_s": round(server, 3),  # gunicorn and its database backends, CPU seconds
            "wrk_s": round(client, 3),
            "busy": round(100 * busy / capacity, 1),
            "bench": round(100 * min(own, busy) / capacity, 1),
            "others": round(100 * max(0.0, busy - own) / capacity, 1),
        }


def busy_share(seconds: float) -> float:
    """Percent of all cores busy over the next ``seconds``."""
    before, t0 = _busy_ticks(), time.monotonic()
    time.sleep(seconds)
    return 100 * (_busy_ticks() - before) / TICK / ((time.monotonic() - t0) * CPUS)


def wait_quiet(limit: float, threshold: float = 15.0, window: float = 3.0) -> float:
    """Wait (at most ``limit`` seconds) until the machine is idle but for ``threshold`` percent
    over ``window`` seconds; the bench itself must be idle. Returns the last busy share."""
    deadline = time.monotonic() + limit
    share = busy_share(window)
    while share > threshold and time.monotonic() < deadline:
        share = busy_share(window)
    return share
