"""make bench: seed (or reuse) the school, serve it with gunicorn, drive every scenario with wrk.

Per scenario: the request once in-process (statements, bytes); a one-second warm-up; /healthz at
16 connections; the scenario at 1 connection (p50) and at 16 (rps, p50/p95/p99); each write run
checked against the database. Then the table, printed and saved under build/bench/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field

import psycopg

from . import report, seed, wrk
from .machine import cpu_ticks, loadavg, wait_quiet
from .scenarios import CHECKS, PROBE, SCENARIOS, SINGLE, Context, Scenario, Slot, requests
from .server import Server, login
from .settings import OUT, VENV, YARDSTICK, Settings

WARM_SECONDS = 1
WARM_CONNECTIONS = 4  # about one per worker: every worker renders the templates once
CAP = 2000  # requests per wrk thread list (a list wraps around when a run gets further)
WRITERS = range(seed.LARGE_STUDENTS.start + 1, seed.LARGE_STUDENTS.start + 17)


@dataclass
class Row:
    key: str
    title: str
    single: wrk.Result | None = None
    many: wrk.Result | None = None
    healthz: wrk.Result | None = None
    status: int = 0
    plain_bytes: int = 0
    wire_bytes: int = 0
    encoding: str = ""
    statements: int = 0
    sql: list[str] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    load: float = 0.0
    checks: list[str] = field(default_factory=list)
    error: str = ""
    elapsed: float = 0.0


def _args(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    p.add_argument("--seconds", type=int, help="length of the 16-connection runs (BENCH_SECONDS)")
    p.add_argument("--only", help="comma-separated scenario keys: " + ",".join(_keys()))
    p.add_argument("--seed", choices=["fresh"], help="seed again (also SEED=fresh)")
    p.add_argument("--no-yardstick", action="store_true", help="skip the yardstick's /healthz")
    p.add_argument("--profile", action="store_true", help="py-spy the three slowest scenarios")
    p.add_argument("--tune", action="store_true", help="compare gunicorn settings instead")
    p.add_argument("--seed-only", action="store_true", help="seed (or check the seed) and stop")
    p.add_argument(
        "--wait-quiet",
        type=int,
        default=int(os.environ.get("BENCH_WAIT_QUIET", "0")),
        metavar="SECONDS",
        help="before each scenario, wait up to this long for other work on the machine to stop",
    )
    return p.parse_args(argv)


def _keys() -> list[str]:
    return [s.key for s in SCENARIOS]


def need_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (make bench installs it)")


def yardstick(settings: Settings, log=print) -> dict[str, dict]:
    """Run the bare reference stack beside Lectern; its lines by endpoint (empty on failure)."""
    if not settings.yardstick or not YARDSTICK.exists() or VENV is None:
        log("  yardstick: skipped")
        return {}
    proc = subprocess.run(
        [str(YARDSTICK), str(VENV), str(settings.short)],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    lines = {}
    pattern = re.compile(r"^(\S+)\s+([\d.]+) rps\s+p50 (\S+)\s+p99 (\S+)")
    for line in proc.stdout.splitlines():
        m = pattern.match(line)
        if m:
            lines[m[1]] = {"rps": float(m[2]), "p50": m[3], "p99": m[4]}
    if "healthz" not in lines:
        log(f"  yardstick failed ({proc.returncode}): {proc.stderr.strip()[-200:]}")
        return {}
    for name, v in lines.items():
        log(f"  yardstick {name:<8} {v['rps']:>8.0f} rps  p50 {v['p50']}  p99 {v['p99']}")
    return lines


class Bench:
    def __init__(self, settings: Settings, seeded: seed.Seed, server: Server, log=print):
        self.settings = settings
        self.server = server
        self.log = log
        self.db = psycopg.connect(settings.dsn, autocommit=True)
        self.ctx = Context(
            seeded_at=seeded.seeded_at,
            encoding=settings.encoding,
            tag=dt.datetime.now().strftime("%H%M%S"),
        )
        self.sessions: dict[str, list] = {}
        self.probe = None

    # -- who is signed in --------------------------------------------------------------------

    def log_in(self) -> None:
        port = self.server.port
        student = seed.LARGE_STUDENTS.start

        def pupil(uid: int):
            return login(port, uid, f"student{uid}@bench.lectern.test", "/learn")

        teacher = seed.TEACHERS[0]
        self.sessions = {
            "reader": [pupil(student)],
            "student": [pupil(uid) for uid in WRITERS],
            "teacher": [login(port, teacher, f"teacher{teacher}@bench.lectern.test", "/teach")],
            "admin": [login(port, seed.ADMIN_ID, "admin@bench.lectern.test", "/admin/users")],
        }
        n = sum(len(v) for v in self.sessions.values())
        self.log(f"  {n} users logged in through the login form")

    def slots(self, s: Scenario, which: str) -> list[Slot]:
        if s.who == "student":
            if which == "many":
                return [Slot(i, sess) for i, sess in enumerate(self.sessions["student"])]
            index = SINGLE if which == "single" else PROBE
            return [Slot(index, self.sessions["reader"][0])]
        sess = self.sessions[s.who][0]
        if which == "many":
            return [Slot(i, sess) for i in range(16)]
        return [Slot(SINGLE if which == "single" else PROBE, sess)]

    def pids(self) -> list[int]:
        rows = self.db.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
        master = [self.server.proc.pid] if self.server.proc else []
        return master + self.server.workers() + [r[0] for r in rows]

    def settle(self, timeout: float = 120) -> float:
        """Wait until gunicorn has served what is still queued from the last run (wrk stops
        without waiting; a slow page can keep every worker busy for seconds after it): the
        workers' CPU time still and no query running, twice in a row."""
        started = time.monotonic()
        prev, quiet = None, 0
        while quiet < 2 and time.monotonic() - started < timeout:
            ticks = cpu_ticks(self.pids())
            running = self.db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state <> 'idle' AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            quiet = quiet + 1 if prev is not None and ticks - prev <= 1 and not running else 0
            prev = ticks
            time.sleep(0.15)
        return time.monotonic() - started

    # -- one scenario ------------------------------------------------------------------------

    def run(self, s: Scenario, seconds: int, label: str, which: str, row: Row) -> wrk.Result:
        slots = self.slots(s, which)
        if label == "warm-up":
            slots = slots[:WARM_CONNECTIONS]
        lists = requests(s, self.db, self.ctx, slots, CAP)
        check = CHECKS.get(s.check) if s.check else None
        self.settle()
        before = check[0](self.db, self.ctx, slots) if check else None
        folder = OUT / "wrk" / f"{s.key}-{label}"
        result = wrk.run(self.server.base, folder, lists, seconds, self.pids)
        if result.requests == 0 and label != "warm-up":
            raise RuntimeError(f"no answer within {seconds} s ({label})")
        if check:
            self.settle()
            after = check[0](self.db, self.ctx, slots)
            ok, text = check[1](self.db, self.ctx, slots, before, after, result.threads)
            row.checks.append(f"{label}: {'OK' if ok else 'FAILED'} — {text}")
            if not ok:
                row.error = row.error or f"write check failed ({label})"
        return result

    def healthz(self, seconds: int) -> wrk.Result:
        lists = [[wrk.Req("GET", "/healthz", {"Accept-Encoding": self.settings.encoding})]] * 16
        self.settle()
        return wrk.run(self.server.base, OUT / "wrk" / "healthz", lists, seconds, self.pids)

    def probe_once(self, s: Scenario, row: Row) -> bool:
        """Statements and bytes, in-process; False if the app answers with an error."""
        if self.probe is None:
            from .probe import Probe

            self.probe = Probe(self.settings)
        slot = self.slots(s, "probe")
        reqs = requests(s, self.db, self.ctx, slot, 2)[0]
        self.settle()  # the statements' times: not beside the last run's stragglers
        if s.items is None:
            self.probe.send(reqs[0], None)  # warm the process (templates, compiled SQL)
        plain = self.probe.send(reqs[0], None, n="p1")
        wire = self.probe.send(reqs[min(1, len(reqs) - 1)], self.settings.encoding, n="p2")
        row.status, row.plain_bytes = plain.status, plain.size
        row.statements, row.sql = len(plain.statements), plain.statements
        row.sql_ms = [round(t, 2) for t in plain.timings]
        row.wire_bytes, row.encoding = wire.size, wire.encoding
        bad = [a.status for a in (plain, wire) if not 200 <= a.status < 400]
        if bad:
            row.error = f"answered {bad[0]} in-process ({s.method} {reqs[0].path})"
            return False
        return True

    def scenario(self, s: Scenario) -> Row:
        started = time.monotonic()
        row = Row(s.key, s.title)
        try:
            return self._scenario(s, row)
        finally:
            row.elapsed = round(time.monotonic() - started, 1)

    def _scenario(self, s: Scenario, row: Row) -> Row:
        secs, short = self.settings.seconds, self.settings.short
        try:
            if not self.probe_once(s, row):
                return row
            self.run(s, WARM_SECONDS, "warm-up", "many", row)
            row.healthz = self.healthz(short)
            row.single = self.run(s, short, "1 connection", "single", row)
            # A slow page gets a longer run, so that 16 connections get answers at all.
            long = min(2 * secs, max(secs, round(20 * row.single.p50_ms / 1000)))
            row.many = self.run(s, long, "16 connections", "many", row)
            row.load = loadavg()[0]
            for result, label in ((row.single, "1 connection"), (row.many, "16 connections")):
                if result.bad:
                    first = result.first_bad()
                    what = f"answered {first}" if first else "failed"
                    row.error = row.error or (
                        f"{result.bad:,} of {result.requests:,} {what} ({label}); {result.errors}"
                    )
        except Exception as exc:  # noqa: BLE001 - one scenario's failure is a row, not a crash
            row.error = f"{type(exc).__name__}: {exc}"
            (OUT / f"error-{s.key}.txt").write_text(traceback.format_exc())
        return row


def main(argv=None) -> int:
    args = _args(argv if argv is not None else sys.argv[1:])
    settings = Settings()
    if args.seconds:
        settings.seconds = args.seconds
    if args.seed == "fresh":
        settings.fresh = True
    if args.no_yardstick:
        settings.yardstick = False
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"Lectern bench — {settings.db_name}, {settings.seconds} s runs, load {loadavg()}")
    seeded = seed.ensure(settings)
    if args.seed_only:
        return 0
    need_wrk()
    if args.tune:
        from .tune import tune

        return tune(settings, args.wait_quiet)
    chosen = [s for s in SCENARIOS if not args.only or s.key in args.only.split(",")]
    undone = seed.reset(settings, seeded)
    print(f"  reset: {', '.join(f'{k} {v:,}' for k, v in undone.items() if v) or 'clean'}")
    load_before = loadavg()
    yard = yardstick(settings)
    rows: list[Row] = []
    with Server(settings) as server:
        bench = Bench(settings, seeded, server)
        bench.log_in()
        workers = len(server.workers())
        print(f"  gunicorn: {workers} workers; {len(chosen)} scenarios")
        for s in chosen:
            if args.wait_quiet:
                bench.settle()
                row_quiet = wait_quiet(args.wait_quiet)
                print(f"  (machine {row_quiet:.0f} % busy before {s.key})")
            row = bench.scenario(s)
            rows.append(row)
            print(report.progress_line(row))
        if args.profile:
            from .profiling import profile_slowest

            profile_slowest(bench, rows)
    meta = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": settings.seconds,
        "encoding": settings.encoding,
        "load_before": load_before,
        "load_after": loadavg(),
        "yardstick": yard,
        "elapsed": round(time.monotonic() - started),
        "workers": workers,
    }
    print()
    print(report.markdown(rows, meta))
    saved = report.save(rows, meta)
    print(f"\nSaved {saved} and {saved.with_suffix('.json')} ({meta['elapsed']} s in all)")
    return 1 if any(r.error for r in rows) else 0
