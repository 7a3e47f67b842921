"""The table: printed as it goes, then as Markdown for docs/performance.md, saved with the raw
figures (JSON) under build/bench/."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .settings import OUT


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _kb(n: int) -> str:
    if not n:
        return "–"
    return f"{n / 1000:.1f} kB" if n < 100_000 else f"{n / 1000:.0f} kB"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.3f}" if a and b else "–"


def progress_line(row) -> str:
    if row.many is None:
        return f"  {row.title:<38} ERROR {row.error}"
    m = row.many
    text = (
        f"  {row.title:<38} 1c p50 {_ms(row.single.p50_ms):>5} ms | 16c {m.rps:7.1f} rps "
        f"p50 {_ms(m.p50_ms):>5} p95 {_ms(m.p95_ms):>5} p99 {_ms(m.p99_ms):>5} ms | "
        f"/healthz {row.healthz.rps:6.0f} | {m.cpu_ms:.1f} ms CPU | {_kb(row.plain_bytes)} | "
        f"{row.statements} stmts | others {m.cpu.get('others', 0):.0f} % | {row.elapsed:.0f} s"
    )
    if row.error:
        text += f"\n    ERROR {row.error}"
    for check in row.checks:
        text += f"\n    {check}"
    return text


HEAD = (
    "| scenario | 1 conn p50 ms | 16 conn rps | p50 ms | p95 ms | p99 ms | ratio to /healthz "
    "(its rps) | ratio to yardstick /healthz | server CPU ms / request | CPU ratio to /healthz "
    "| HTML | compressed | SQL statements | SQL ms | load (1 min) | CPU of others |"
)


def markdown(rows, meta: dict) -> str:
    yard = (meta.get("yardstick") or {}).get("healthz", {}).get("rps")
    lines = [HEAD, "|" + "---|" * HEAD.count(" | ") + "---|"]
    notes = []
    for row in rows:
        title = row.title
        if row.error:
            notes.append(f"- **{row.title}**: error — {row.error}")
            title += " **(error)**"
        if row.many is None:
            lines.append(f"| {title} | error |" + " |" * (HEAD.count(" | ") - 1))
            continue
        m, h = row.many, row.healthz
        wire = _kb(row.wire_bytes) + (f" {row.encoding}" if row.encoding != "identity" else "")
        lines.append(
            f"| {title} | {_ms(row.single.p50_ms)} | {m.rps:.1f} | {_ms(m.p50_ms)} "
            f"| {_ms(m.p95_ms)} | {_ms(m.p99_ms)} | {_ratio(m.rps, h.rps)} ({h.rps:.0f}) "
            f"| {_ratio(m.rps, yard)} | {m.cpu_ms:.2f} | {_ratio(h.cpu_ms, m.cpu_ms)} "
            f"| {_kb(row.plain_bytes)} | {wire} | {row.statements} | {_ms(sum(row.sql_ms))} "
            f"| {row.load:.2f} | {m.cpu.get('others', 0):.0f} % |"
        )
    before, after = meta["load_before"], meta["load_after"]
    out = [
        "\n".join(lines),
        "",
        f"Measured {meta['when']}: wrk at 1 and 16 connections ({meta['seconds']} s at 16), "
        f"Accept-Encoding: {meta['encoding'] or 'none'}, {meta['workers']} gunicorn workers. "
        f"Load average before the run {before[0]:.2f} / {before[1]:.2f} / {before[2]:.2f}, "
        f"after {after[0]:.2f} / {after[1]:.2f} / {after[2]:.2f}. "
        "CPU of others: the share of the machine's CPU not spent by the bench's processes "
        "(gunicorn, its PostgreSQL backends, wrk) during the 16-connection run. Server CPU: "
        "gunicorn's and its PostgreSQL backends' CPU time per request at 16 connections; its "
        "ratio (/healthz's over the scenario's) is what the rps ratio would be on an idle "
        "machine if both were CPU-bound, and is far less disturbed by other work.",
    ]
    if yard:
        y = meta["yardstick"]
        out.append(
            "Yardstick (bare Flask stack, same minutes): "
            + ", ".join(f"`/{k}` {v['rps']:.0f} rps (p99 {v['p99']})" for k, v in y.items())
            + "."
        )
    checks = [f"- {row.title}: {c}" for row in rows for c in row.checks]
    if checks:
        out += ["", "Writes checked in the database:", *checks]
    if notes:
        out += ["", "Errors:", *notes]
    return "\n".join(out)


def save(rows, meta: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = meta["when"].replace(":", "").replace("-", "")[:15]
    md = OUT / f"bench-{stamp}.md"
    md.write_text(markdown(rows, meta) + "\n")
    (OUT / "latest.md").write_text(md.read_text())
    data = {"meta": meta, "rows": [dataclasses.asdict(r) for r in rows]}
    md.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str))
    parts = []
    for r in rows:
        lines = [f"{ms:8.2f} ms  {q}" for q, ms in zip(r.sql, r.sql_ms, strict=False)]
        head = f"## {r.title} ({r.statements} statements, {sum(r.sql_ms):.1f} ms in-process)"
        parts.append("\n".join([head, *lines]))
    md.with_name(md.stem + "-statements.txt").write_text("\n\n".join(parts) + "\n")
    return md
