"""python -m tests.bench --tune: gunicorn settings side by side (workers, threads, worker class,
worker recycling, access log), each measured on /healthz and on the large course page at 16
connections. The settings are gunicorn.conf.py with a few names overridden."""

from __future__ import annotations

import datetime as dt
import os
import time

import psycopg

from . import seed, wrk
from .machine import loadavg
from .scenarios import SCENARIOS, Context, Slot, requests
from .server import Server, login
from .settings import OUT, ROOT, Settings

NO_RECYCLING = {"max_requests": 0, "accesslog": "-"}


def _sync(workers: int) -> dict:
    return {**NO_RECYCLING, "workers": workers, "threads": 1, "worker_class": "sync"}


def _gthread(workers: int, threads: int, **more) -> dict:
    return {**NO_RECYCLING, "workers": workers, "threads": threads, "worker_class": "gthread",
            **more}  # fmt: skip


# name -> overrides of gunicorn.conf.py (None: the file as it is)
CONFIGS: dict[str, dict | None] = {
    "gunicorn.conf.py as it is": None,
    "sync, 2 workers": _sync(2),
    "sync, 4 workers": _sync(4),
    "sync, 5 workers": _sync(5),
    "gthread, 2 workers × 2 threads": _gthread(2, 2),
    "gthread, 4 workers × 1 thread": _gthread(4, 1),
    "gthread, 4 workers × 2 threads": _gthread(4, 2),
    "gthread, 5 workers × 2 threads": _gthread(5, 2),
    "gthread, 4 × 1, no access log": _gthread(4, 1, accesslog=None),
    "gthread, 4 × 1, max_requests 2000 ± 200": _gthread(
        4, 1, max_requests=2000, max_requests_jitter=200
    ),
}
ONLY = [k for k in os.environ.get("BENCH_TUNE", "").split(";") if k]


def _conf(name: str, overrides: dict | None) -> str:
    if overrides is None:
        return "gunicorn.conf.py"
    path = OUT / "tune" / (name.replace(" ", "_").replace(",", "").replace("×", "x") + ".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# gunicorn.conf.py with overrides (tests/bench/tune.py)",
        f"exec(compile(open({str(ROOT / 'gunicorn.conf.py')!r}).read(), 'gunicorn.conf.py', "
        "'exec'))",
        *(f"{k} = {v!r}" for k, v in overrides.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def tune(settings: Settings) -> int:
    seeded = seed.current(settings)
    seed.reset(settings, seeded)
    page = next(s for s in SCENARIOS if s.key == "course")
    configs = {k: v for k, v in CONFIGS.items() if not ONLY or k in ONLY}
    secs = settings.seconds
    lines = [
        "| gunicorn settings | /healthz rps | p50 ms | p99 ms | course page rps | p50 ms "
        "| p95 ms | p99 ms | load (1 min) | CPU of others |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    db = psycopg.connect(settings.dsn, autocommit=True)
    for name, overrides in configs.items():
        conf = _conf(name, overrides)
        with Server(settings, config=conf, log_name="tune.log") as server:

            def pids(server=server):
                rows = db.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                ).fetchall()
                return [server.proc.pid, *server.workers(), *(r[0] for r in rows)]

            uid = seed.LARGE_STUDENTS.start
            student = login(server.port, uid, f"student{uid}@bench.lectern.test", "/learn")
            ctx = Context(seeded_at=seeded.seeded_at, encoding=settings.encoding)
            course = requests(page, db, ctx, [Slot(i, student) for i in range(16)], 1)
            health = [[wrk.Req("GET", "/healthz", {"Accept-Encoding": settings.encoding})]] * 16
            wrk.run(server.base, OUT / "wrk" / "tune-warm", course, 1, pids)
            time.sleep(3)
            h = wrk.run(server.base, OUT / "wrk" / "tune-healthz", health, secs, pids)
            time.sleep(1)
            c = wrk.run(server.base, OUT / "wrk" / "tune-course", course, secs, pids)
            load = loadavg()[0]
        line = (
            f"| {name} | {h.rps:.0f} | {h.p50_ms:.1f} | {h.p99_ms:.0f} | {c.rps:.1f} "
            f"| {c.p50_ms:.0f} | {c.p95_ms:.0f} | {c.p99_ms:.0f} | {load:.2f} "
            f"| {(h.cpu['others'] + c.cpu['others']) / 2:.0f} % |"
        )
        print(line, flush=True)
        lines.append(line)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    out = OUT / f"tune-{stamp}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines) + f"\n\nSaved {out}")
    return 0
