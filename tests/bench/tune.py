"""python -m tests.bench --tune: gunicorn settings side by side (workers, threads, worker class,
worker recycling, access log), each measured on /healthz and on the large course page at 16
connections. The settings are gunicorn.conf.py with a few names overridden."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import time

import psycopg

from . import seed, wrk
from .machine import TICK, cpu_ticks, loadavg, wait_quiet
from .scenarios import SCENARIOS, Context, Slot, requests
from .server import Server, login
from .settings import OUT, ROOT, Settings

NO_RECYCLING = {"max_requests": 0, "accesslog": "-"}


def _sync(workers: int) -> dict:
    return {**NO_RECYCLING, "workers": workers, "threads": 1, "worker_class": "sync"}


def _gthread(workers: int, threads: int) -> dict:
    return {**NO_RECYCLING, "workers": workers, "threads": threads, "worker_class": "gthread"}


# name -> overrides of gunicorn.conf.py (None: the file as it is)
CONFIGS: dict[str, dict | None] = {
    "before: gthread, 5 workers × 2 threads, max_requests 2000 ± 200": {
        **_gthread(5, 2), "max_requests": 2000, "max_requests_jitter": 200,
    },
    "sync, 2 workers": _sync(2),
    "sync, 5 workers": _sync(5),
    "gthread, 2 workers × 2 threads": _gthread(2, 2),
    "gthread, 4 workers × 1 thread": _gthread(4, 1),
    "gthread, 4 workers × 2 threads": _gthread(4, 2),
    "gthread, 5 workers × 2 threads": _gthread(5, 2),
    "gunicorn.conf.py as it is (sync, 4 workers)": None,
    "gunicorn.conf.py, no access log": {"accesslog": None},
    "gunicorn.conf.py, max_requests 2000 ± 200": {"max_requests": 2000, "max_requests_jitter": 200},
}  # fmt: skip
ONLY = [k for k in os.environ.get("BENCH_TUNE", "").split(";") if k]
ROUNDS = int(os.environ.get("BENCH_TUNE_ROUNDS", "3"))


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


def _measure(settings: Settings, seeded, db, name: str, overrides: dict | None) -> dict:
    page = next(s for s in SCENARIOS if s.key == "course")
    secs = settings.seconds
    with Server(settings, config=_conf(name, overrides), log_name="tune.log") as server:

        def pids():
            rows = db.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchall()
            return [server.proc.pid, *server.workers(), *(r[0] for r in rows)]

        boot = sum(cpu_ticks([w]) for w in server.workers()) / TICK / len(server.workers())
        uid = seed.LARGE_STUDENTS.start
        student = login(server.port, uid, f"student{uid}@bench.lectern.test", "/learn")
        ctx = Context(seeded_at=seeded.seeded_at, encoding=settings.encoding)
        course = requests(page, db, ctx, [Slot(i, student) for i in range(16)], 1)
        health = [[wrk.Req("GET", "/healthz", {"Accept-Encoding": settings.encoding})]] * 16
        wrk.run(server.base, OUT / "wrk" / "tune-warm", course, 1, pids)
        time.sleep(3)  # the warm-up's last pages served
        h = wrk.run(server.base, OUT / "wrk" / "tune-healthz", health, secs, pids)
        time.sleep(1)
        c = wrk.run(server.base, OUT / "wrk" / "tune-course", course, secs, pids)
    return {
        "healthz": h.rps, "h50": h.p50_ms, "h99": h.p99_ms, "course": c.rps, "c50": c.p50_ms,
        "c95": c.p95_ms, "c99": c.p99_ms, "load": loadavg()[0],
        "others": (h.cpu["others"] + c.cpu["others"]) / 2, "hcpu": h.cpu_ms, "ccpu": c.cpu_ms,
        "boot": boot,
    }  # fmt: skip


def tune(settings: Settings, quiet: int = 0) -> int:
    """Every config once per round, rounds interleaved (the machine's load drifts); the table
    shows each figure's median over the rounds."""
    seeded = seed.current(settings)
    seed.reset(settings, seeded)
    configs = {k: v for k, v in CONFIGS.items() if not ONLY or k in ONLY}
    db = psycopg.connect(settings.dsn, autocommit=True)
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    for r in range(ROUNDS):
        for name, overrides in configs.items():
            if quiet:
                wait_quiet(quiet)
            m = _measure(settings, seeded, db, name, overrides)
            runs[name].append(m)
            print(
                f"  round {r + 1}: {name:<62} /healthz {m['healthz']:6.0f} rps p99 "
                f"{m['h99']:5.0f} ms {m['hcpu']:.2f} ms CPU | course {m['course']:5.1f} rps "
                f"p95 {m['c95']:5.0f} ms {m['ccpu']:.1f} ms CPU "
                f"| others {m['others']:.0f} %",
                flush=True,
            )
    lines = [
        f"| gunicorn settings (median of {ROUNDS}) | /healthz rps | p50 ms | p99 ms "
        "| CPU ms / request | course page rps | p50 ms | p95 ms | p99 ms | CPU ms / request "
        "| worker boot CPU s | load (1 min) | CPU of others |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, ms in runs.items():
        med = {k: statistics.median(m[k] for m in ms) for k in ms[0]}
        lines.append(
            f"| {name} | {med['healthz']:.0f} | {med['h50']:.1f} | {med['h99']:.0f} "
            f"| {med['hcpu']:.2f} | {med['course']:.1f} | {med['c50']:.0f} | {med['c95']:.0f} "
            f"| {med['c99']:.0f} | {med['ccpu']:.1f} | {med['boot']:.2f} "
            f"| {med['load']:.2f} | {med['others']:.0f} % |"
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    out = OUT / f"tune-{stamp}.md"
    out.write_text("\n".join(lines) + "\n")
    (OUT / f"tune-{stamp}.json").write_text(json.dumps(runs, indent=1))
    print("\n" + "\n".join(lines) + f"\n\nSaved {out}")
    return 0
