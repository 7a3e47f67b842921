"""--profile: py-spy on every gunicorn worker while wrk drives a scenario at 16 connections.

py-spy samples each worker 100 times a second, idle threads included (``--idle``: waiting for
PostgreSQL counts), and writes collapsed stacks. Only samples inside a request (under gunicorn's
``handle_request``) count; the summary gives the share of request time under a few well-known
frames (SQL, Jinja, url_for, compression, …), the app's own functions with the most time under
them, and the functions where the time is spent in themselves.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from .settings import OUT

RATE = 100
REQUEST = "handle_request (gunicorn/"  # sync and gthread workers alike
# label -> substrings of a frame ("func (module/file.py:line)"); a sample counts once per label.
KINDS = {
    "SQL: execute (incl. waiting for PostgreSQL)": ("(sqlalchemy/engine/base.py", "_execute"),
    "PostgreSQL round trips (psycopg)": ("(psycopg/",),
    "ORM: rows to objects": ("(sqlalchemy/orm/loading.py",),
    "Jinja: render_template": ("render_template (flask/templating.py",),
    "url_for": ("url_for (flask/",),
    "Markdown": ("(webapp/markdown.py",),
    "compression (Flask-Compress)": ("(flask_compress/",),
    "forms, CSRF (WTForms, Flask-WTF)": ("(wtforms/", "(flask_wtf/"),
    "sessions (Redis)": ("(redis/",),
    "access log": ("(gunicorn/glogging.py",),
}


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rstrip().rpartition(" ")
    return stack.split(";"), int(count)


def summarize(files: list[Path], top: int = 8) -> str:
    total = 0
    kinds: Counter = Counter()
    mine: Counter = Counter()
    leaves: Counter = Counter()
    for path in files:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            frames, n = _frames(line)
            start = next((i for i, f in enumerate(frames) if REQUEST in f), None)
            if start is None:
                continue  # the worker waiting for a connection, its heartbeat
            frames = frames[start:]
            total += n
            for label, parts in KINDS.items():
                if any(all(p in f for p in parts) for f in frames):
                    kinds[label] += n
            for name in {f.split(" (")[0] + " " + _where(f) for f in frames if "webapp/" in f}:
                mine[name] += n
            leaves[frames[-1].split(" (")[0] + " " + _where(frames[-1])] += n
    if not total:
        return "no samples inside a request"

    def pct(n: int) -> str:
        return f"{100 * n / total:4.0f} %"

    out = [f"{total:,} samples in requests ({total / RATE:.1f} s of request time)", ""]
    out += ["Under these frames:"]
    out += [f"  {pct(n)}  {label}" for label, n in kinds.most_common()]
    out += ["", "The app's functions (time under them):"]
    out += [f"  {pct(n)}  {name}" for name, n in mine.most_common(top)]
    out += ["", "Where the time is spent itself (leaf frames):"]
    out += [f"  {pct(n)}  {name}" for name, n in leaves.most_common(top)]
    return "\n".join(out)


def _where(frame: str) -> str:
    inside = frame.rpartition("(")[2].rstrip(")")
    return f"({inside.rpartition(':')[0]})"


def record(pids: list[int], seconds: int, name: str) -> tuple[list[subprocess.Popen], list[Path]]:
    spy = str(Path(sys.executable).parent / "py-spy")
    folder = OUT / "profile"
    folder.mkdir(parents=True, exist_ok=True)
    files, procs = [], []
    for pid in pids:
        out = folder / f"{name}-{pid}.txt"
        files.append(out)
        procs.append(
            subprocess.Popen(
                [
                    spy, "record", "--pid", str(pid), "--duration", str(seconds),
                    "--rate", str(RATE), "--idle", "--format", "raw", "--output", str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    return procs, files


def profile_slowest(bench, rows, count: int = 3) -> None:
    """py-spy the ``count`` scenarios slowest at one connection, under 16 connections."""
    from .run import Row
    from .scenarios import SCENARIOS

    measured = [r for r in rows if r.single is not None]
    slowest = sorted(measured, key=lambda r: r.single.p50_ms, reverse=True)[:count]
    seconds = max(6, bench.settings.seconds)
    report = []
    for row in slowest:
        s = next(x for x in SCENARIOS if x.key == row.key)
        bench.settle()
        procs, files = record(bench.server.workers(), seconds + 1, s.key)
        time.sleep(1.0)  # py-spy attaches
        scratch = Row(s.key, s.title)
        result = bench.run(s, seconds - 1, "profile", "many", scratch)
        for p in procs:
            p.wait(timeout=seconds + 30)
        text = summarize([f for f in files if f.exists()])
        head = f"### {s.title} ({result.rps:.1f} rps at 16 connections while profiled)"
        report.append(f"{head}\n\n```\n{text}\n```\n")
        print(f"\n{head}\n{text}", flush=True)
    out = OUT / "profile.md"
    out.write_text("\n".join(report))
    print(f"\nSaved {out}")
