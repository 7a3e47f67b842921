"""wrk runs: one Lua script, one data file per wrk thread, one JSON line of results.

Each wrk thread has one connection and its own list of requests (a student, or a slice of the
grading queue), cycled with a counter; ``__N__`` in a body becomes the request's number in its
thread. ``done()`` prints the percentiles wrk's own summary lacks (p95) and, per thread, how
many requests were sent and how many answered 2xx/3xx, which the write checks compare with the
database.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .machine import CpuMeter

LUA = r"""-- written by tests/bench/wrk.py
local dir = "@DIR@"
local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count)
  table.insert(threads, thread)
end

function init(args)
  items = dofile(dir .. "/t" .. id .. ".lua")
  n_items = #items
  sent, got, ok, bad, first_bad, last_ok = 0, 0, 0, 0, 0, 0
end

function request()
  sent = sent + 1
  local it = items[(sent - 1) % n_items + 1]
  local body = it[4]
  if body then body = body:gsub("__N__", tostring(sent)) end
  return wrk.format(it[1], it[2], it[3], body)
end

function response(status, headers, body)
  got = got + 1
  if status >= 200 and status < 400 then
    ok = ok + 1
    last_ok = got
  else
    bad = bad + 1
    if first_bad == 0 then first_bad = status end
  end
end

function done(summary, latency, requests)
  local t = {}
  for _, th in ipairs(threads) do
    t[#t + 1] = string.format(
      '{"id":%d,"sent":%d,"got":%d,"ok":%d,"bad":%d,"first_bad":%d,"last_ok":%d,"items":%d}',
      th:get("id"), th:get("sent"), th:get("got"), th:get("ok"), th:get("bad"),
      th:get("first_bad"), th:get("last_ok"), th:get("n_items"))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"p50":%d,"p95":%d,"p99":%d,' ..
    '"mean":%.1f,"max":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d},"threads":[%s]}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(t, ",")))
end
"""


@dataclass
class Req:
    """One request as wrk sends it (and as the in-process probe replays it)."""

    method: str
    path: str
    headers: dict[str, str]
    body: str | None = None


@dataclass
class Result:
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    errors: dict = field(default_factory=dict)
    threads: list[dict] = field(default_factory=list)
    cpu: dict = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """CPU time of gunicorn and its PostgreSQL backends per request: what a request costs
        the server, much less disturbed by other work on the machine than rps and latency."""
        return 1000 * self.cpu.get("server_s", 0.0) / self.requests if self.requests else 0.0

    @property
    def bad(self) -> int:
        """Answers other than 2xx/3xx, plus socket errors and timeouts."""
        return sum(self.errors.values())

    def first_bad(self) -> int:
        return next((t["first_bad"] for t in self.threads if t["first_bad"]), 0)


def lua_str(text: str) -> str:
    out = []
    for byte in text.encode():
        ch = chr(byte)
        if ch in '\\"' or byte < 32 or byte > 126:
            out.append(f"\\{byte:03d}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _lua_item(req: Req) -> str:
    headers = ", ".join(f"[{lua_str(k)}] = {lua_str(v)}" for k, v in req.headers.items())
    body = lua_str(req.body) if req.body is not None else "nil"
    return f"{{{lua_str(req.method)}, {lua_str(req.path)}, {{{headers}}}, {body}}}"


def write_script(folder: Path, lists: list[list[Req]]) -> Path:
    """The script and one data file per thread (thread i cycles over lists[i - 1])."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i, reqs in enumerate(lists, start=1):
        if not reqs:
            raise ValueError(f"wrk thread {i} has no request to send")
        items = ",\n".join(_lua_item(r) for r in reqs)
        (folder / f"t{i}.lua").write_text(f"return {{\n{items}\n}}\n")
    script = folder / "script.lua"
    script.write_text(LUA.replace("@DIR@", str(folder)))
    return script


def run(base: str, folder: Path, lists: list[list[Req]], seconds: float, pids=None) -> Result:
    """wrk with one connection per list (thread), for ``seconds``; CPU measured beside it."""
    script = write_script(folder, lists)
    n = len(lists)
    cmd = [
        "wrk", f"-t{n}", f"-c{n}", f"-d{seconds}s", "--timeout", "30s", "--latency",
        "-s", str(script), base,
    ]  # fmt: skip
    meter = CpuMeter(pids)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    cpu = meter.stop()
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    data = json.loads(line[6:])
    return Result(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50"] / 1000,
        p95_ms=data["p95"] / 1000,
        p99_ms=data["p99"] / 1000,
        errors={k: v for k, v in data["errors"].items() if v},
        threads=data["threads"],
        cpu=cpu,
    )
