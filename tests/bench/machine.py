"""How busy the machine was: the load average, and who used the CPU during a run.

Other developers run tests on the same machine. The load average alone cannot tell their work
from ours (a saturated run makes it 2 by itself), so each run also measures, from /proc, the
share of the machine's CPU time spent by the bench's own processes (gunicorn, its PostgreSQL
backends, wrk) and by everything else.
"""

from __future__ import annotations

import os
import resource
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
    # utime + stime, and cutime + cstime: a gunicorn master counts the workers it reaped
    return sum(int(v) for v in fields[11:15])


def cpu_ticks(pids) -> int:
    return sum(_pid_ticks(pid) for pid in pids)


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU shares (percent of all cores) between now and ``stop()``.

    ``pids`` (a callable) names the bench's processes; it is asked again at the end, and a
    process that appeared meanwhile (a new database connection) counts from zero.
    """

    def __init__(self, pids=None):
        self.pids = pids or (lambda: [])
        self.t0 = time.monotonic()
        self.busy0 = _busy_ticks()
        self.own0 = {pid: _pid_ticks(pid) for pid in self.pids()}
        self.children0 = _children_seconds()

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.t0
        busy = (_busy_ticks() - self.busy0) / TICK
        now = {pid: _pid_ticks(pid) for pid in self.pids()}
        server = sum(max(0, t - self.own0.get(p, 0)) for p, t in now.items()) / TICK
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
