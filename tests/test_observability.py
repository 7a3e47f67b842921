"""Operations you can see (issue 18, point 11): /metrics behind its bearer token, and the logs.

Metrics: off without METRICS_TOKEN (404, no hook on any request); with it, 401 without the
token; the exposition parses and counts requests per endpoint (never the path), reads the outbox
at scrape time and counts the Redis failures that made a request answer 503. Under gunicorn with
PROMETHEUS_MULTIPROC_DIR, two workers' counts add up. Logs: in production every line is one
JSON object, one access line per request, and no line holds a password, a token, the session
cookie or a bearer token.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    PASSWORD,
    IsolatedClient,
    base_config,
    login_as,
    make_user,
)
from tests.servers import dead_redis, gunicorn
from webapp import create_app, logs, sessions, tokens
from webapp.extensions import db
from webapp.mail import GAVE_UP
from webapp.models import OutboxMessage, utcnow

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "mt-Zx8kQ2pL9vN4mR7tY1wE5uI3oP6aS0dF"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def config_overrides() -> dict:
    return {"METRICS_TOKEN": TOKEN}


def scrape(client, **kwargs) -> dict:
    """The exposition, parsed: {(sample name, frozenset of labels): value}."""
    resp = client.get("/metrics", headers=BEARER, **kwargs)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(resp.get_data(as_text=True))


def parse(text: str) -> dict:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def requests_of(samples: dict, **labels) -> float:
    """Requests counted per endpoint: the latency histogram's count."""
    want = set(labels.items())
    return sum(
        v
        for (name, lab), v in samples.items()
        if name == "flask_http_request_duration_seconds_count" and want <= lab
    )


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, frozenset(labels.items()))]


# --- the endpoint ----------------------------------------------------------------------------


def test_metrics_are_off_without_a_token(app):
    off = create_app(base_config())
    off.test_client_class = IsolatedClient
    c = off.test_client()
    assert c.get("/metrics").status_code == 404
    assert c.get("/metrics", headers=BEARER).status_code == 404
    # no metric work on any request: not one hook of the exporter, no extension
    hooks = [
        *off.before_request_funcs.get(None, []),
        *off.after_request_funcs.get(None, []),
        *off.teardown_request_funcs.get(None, []),
    ]
    assert [h for h in hooks if "prometheus" in h.__module__] == []
    assert "lectern_metrics" not in off.extensions
    assert "metrics" not in off.view_functions
    # … and with the token set, there they are
    assert any("prometheus" in h.__module__ for h in app.before_request_funcs[None])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token-wrong-token"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
)
def test_metrics_refuse_without_the_bearer_token(client, headers):
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "flask_http" not in resp.get_data(as_text=True)
    assert client.get("/metrics", headers=BEARER).status_code == 200


def test_a_weak_metrics_token_is_refused():
    from webapp.config import ConfigError

    with pytest.raises(ConfigError, match="METRICS_TOKEN is weak"):
        create_app(base_config(METRICS_TOKEN="short"))


def test_requests_are_counted_per_endpoint_never_per_path(app, client, student):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/courses/987654").status_code == 404  # a route, an id no row has
    assert client.get("/no/such/page/SeCrEt").status_code == 404  # no route at all
    login_as(client, student)
    assert client.get("/account").status_code == 200
    assert client.open("/healthz", method="BREW").status_code == 405  # an odd method
    samples = scrape(client)

    assert (
        requests_of(samples, endpoint="site.healthz", method="GET", status="200")
        - (requests_of(before, endpoint="site.healthz", method="GET", status="200"))
        == 3
    )
    assert requests_of(samples, endpoint="unmatched", method="GET", status="404") == 1
    assert requests_of(samples, method="GET", status="404") == 2
    account = [lab for (_, lab) in samples if ("endpoint", "auth.account") in lab]
    assert account, sorted(samples)
    # labels are endpoints, methods and statuses: no path, no id, nothing a client chose
    values = {v for (_, lab) in samples for k, v in lab if k not in ("le",)}
    assert not [v for v in values if "/" in v or "987654" in v or "SeCrEt" in v], values
    assert "BREW" not in values
    assert requests_of(samples, endpoint="metrics") == 0  # the scrapes themselves are not
    # the latency histogram has its buckets
    assert (
        "flask_http_request_duration_seconds_bucket",
        frozenset(
            {("endpoint", "site.healthz"), ("method", "GET"), ("status", "200"), ("le", "+Inf")}
        ),
    ) in samples


def test_metrics_answer_when_the_login_throttle_has_refused(app, client, student):
    """The log-in throttle counts per address: once it refuses this address, the scrape from
    the same address is still answered (exempt from every rate limit, no CSRF)."""
    app.config["LOGIN_LIMIT_IP"] = "2 per 15 minutes"
    data = {"email": student.email, "password": "wrong password"}
    codes = [client.post("/login", data=data).status_code for _ in range(3)]
    assert codes == [422, 422, 429]
    assert client.get("/metrics", headers=BEARER).status_code == 200
    assert client.post("/metrics", headers=BEARER).status_code == 405


def test_outbox_gauges_are_read_at_scrape_time(app, client, count_queries):
    samples = scrape(client)
    assert value(samples, "lectern_outbox_pending") == 0
    assert value(samples, "lectern_outbox_given_up") == 0
    assert value(samples, "lectern_outbox_oldest_pending_age_seconds") == 0

    now = utcnow()

    def row(created_ago: int, **extra) -> OutboxMessage:
        return OutboxMessage(
            recipient="someone@example.com",
            subject="s",
            text_body="b",
            created_at=now - dt.timedelta(seconds=created_ago),
            next_attempt_at=extra.pop("next_attempt_at", now),
            **extra,
        )

    db.session.add_all(
        [
            row(120, attempts=2, last_error="SMTP down"),  # the oldest pending
            row(5),
            row(3),
            row(86400, next_attempt_at=GAVE_UP, attempts=30, last_error="gave up after 30"),
            row(2 * 86400, sent_at=now - dt.timedelta(days=1)),  # sent: not counted
        ]
    )
    db.session.commit()
    with count_queries() as q:
        samples = scrape(client)
    assert q.count == 1, q.statements  # one query per scrape
    assert value(samples, "lectern_outbox_pending") == 3
    assert value(samples, "lectern_outbox_given_up") == 1
    assert 120 <= value(samples, "lectern_outbox_oldest_pending_age_seconds") < 120 + 60


def test_outbox_unreadable_leaves_the_gauges_out_not_the_scrape(app, client, monkeypatch):
    from webapp import metrics

    def broken(self):
        raise RuntimeError("database down")

    monkeypatch.setattr(metrics.OutboxCollector, "_read", broken)
    samples = scrape(client)
    assert ("lectern_outbox_pending", frozenset()) not in samples
    assert ("lectern_session_store_errors_total", frozenset({("source", "sessions")})) in samples


# --- session-store errors --------------------------------------------------------------------


@pytest.fixture(params=["sessions", "sessions-and-limits"])
def redis_down(request, app):
    """Redis unreachable (a closed port, answered at once): the session store only (rate
    limits in memory), or both, as production wires them from one REDIS_URL."""
    if request.param == "sessions":
        dead = dead_redis()
        cfg = base_config(REDIS_CLIENT=dead, METRICS_TOKEN=TOKEN)
    else:
        cfg = base_config(REDIS_CLIENT=None, REDIS_URL="redis://127.0.0.1:1/0", METRICS_TOKEN=TOKEN)
        del cfg["RATELIMIT_STORAGE_URI"]  # derived from REDIS_URL: down too
    broken = create_app(cfg)
    broken.test_client_class = IsolatedClient
    return request.param, broken


def store_errors(samples: dict) -> dict:
    return {
        source: value(samples, "lectern_session_store_errors_total", source=source)
        for source in ("sessions", "rate_limits", "readiness")
    }


def test_session_store_errors_are_counted(redis_down, student):
    kind, broken = redis_down
    signed_in = broken.test_client()
    with signed_in.session_transaction() as sess, broken.app_context():
        sess[sessions.AUTH_KEY] = sessions.sign(student.id, "some-jti", 0, False)
    scraper = broken.test_client()
    assert store_errors(scrape(scraper)) == {"sessions": 0, "rate_limits": 0, "readiness": 0}

    assert signed_in.get("/account").status_code == 503
    assert signed_in.get("/learn").status_code == 503
    assert broken.test_client().get("/readyz").status_code == 503
    assert store_errors(scrape(scraper)) == {"sessions": 2, "rate_limits": 0, "readiness": 1}

    # A log-in: the rate limits' Redis first when it is down, else the session store's.
    data = {"email": student.email, "password": PASSWORD}
    assert broken.test_client().post("/login", data=data).status_code == 503
    expected = (
        {"sessions": 3, "rate_limits": 0, "readiness": 1}
        if kind == "sessions"
        else {"sessions": 2, "rate_limits": 1, "readiness": 1}
    )
    assert store_errors(scrape(scraper)) == expected
    # The scrape itself never asks the store, even with a signed-in cookie: no error counted.
    assert store_errors(scrape(signed_in)) == expected
    # Public pages do not count: they never needed Redis.
    assert broken.test_client().get("/courses").status_code == 200
    assert store_errors(scrape(scraper)) == expected


# --- JSON logs -------------------------------------------------------------------------------


@pytest.fixture
def captured():
    """What the root logger writes, through the handler production uses (webapp/logs.py)."""
    stream = io.StringIO()
    handler = logs.json_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


PRODUCTION = {
    "LECTERN_ENV": "production",
    "SECRET_KEY": "a-long-random-production-key-0123456789-xyz",
    "BASE_URL": "https://lectern.example",
    "MAIL_SERVER": "smtp.lectern.example",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_NAME": "__Host-lectern",
}


def test_production_logs_are_json_lines_without_secrets(app, captured):
    prod = create_app(base_config(**PRODUCTION))
    assert prod.config["LOG_FORMAT"] == "json"  # production's default
    prod.test_client_class = IsolatedClient
    https = {"base_url": "https://lectern.example"}
    password = "Tr0ub4dor&3-horse-staple"
    student = make_user(password=password)
    pending = make_user(active=False)
    with prod.app_context():  # signed with production's key
        link = tokens.make(
            "activate",
            uid=pending.id,
            email=pending.email,
            pw=tokens.password_digest(pending.password_hash),
        )
    ids = []

    def sent(resp, status):
        assert resp.status_code == status, resp.get_data(as_text=True)[:300]
        ids.append(resp.headers["X-Request-ID"])
        return resp

    browser = prod.test_client()
    resp = sent(
        browser.post("/login", data={"email": student.email, "password": password}, **https), 303
    )
    cookie = resp.headers["Set-Cookie"].split(";")[0].partition("=")[2]
    assert len(cookie) > 20
    sent(browser.get("/account", **https), 200)
    visitor = prod.test_client()
    sent(visitor.post("/login", data={"email": student.email, "password": "nope"}, **https), 422)
    sent(visitor.get(f"/activate/{link}", **https), 200)
    sent(visitor.post(f"/activate/{link}", **https), 303)
    api = prod.test_client()
    grant = {"grant_type": "password", "username": student.email, "password": password}
    pair = sent(api.post("/api/v1/auth/token", data=grant, **https), 200).get_json()
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    sent(api.get("/api/v1/me", headers=bearer, **https), 200)
    sent(api.get("/metrics", headers=bearer, **https), 404)  # metrics off here

    lines = captured.getvalue().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for rec in records:
        assert {"time", "level", "logger", "message"} <= rec.keys(), rec
        dt.datetime.fromisoformat(rec["time"])
    access = [r for r in records if r["logger"] == "lectern.access"]
    assert [r["request_id"] for r in access] == ids  # exactly one access line per request
    for rec in access:
        assert {"method", "route", "endpoint", "status", "duration_ms"} <= rec.keys(), rec
        assert rec["duration_ms"] >= 0
    by_endpoint = {r["endpoint"]: r for r in access}
    assert by_endpoint["auth.account"]["user_id"] == student.id
    me = next(r for r in access if r["route"] == "/api/v1/me")
    assert me["user_id"] == student.id and me["status"] == 200
    activation = [r for r in access if r["endpoint"] == "auth.activate"]
    assert [r["route"] for r in activation] == ["/activate/<token>"] * 2
    assert activation[0]["message"] == "GET /activate/<token> 200"
    assert "user_id" not in activation[0]  # nobody signed in
    assert [r["status"] for r in access if r["endpoint"] == "auth.login"] == [303, 422]

    text = captured.getvalue()
    for secret in (
        password,
        link,
        cookie,
        pair["access_token"],
        pair["refresh_token"],
        PRODUCTION["SECRET_KEY"],
    ):
        assert secret not in text
    assert "Bearer" not in text and "Cookie" not in text


def test_an_app_log_line_carries_the_request_and_the_user(app, captured, student):
    """Any record logged during a request (here an error page's) has its request id and, once
    the request has loaded them, its user; a link's token in a message is redacted."""
    prod = create_app(base_config(LOG_FORMAT="json"))
    with prod.test_request_context("/"):
        from flask import g

        g.request_id = "abc123"
        g.user_id = student.id
        token = "eyJ1aWQiOjF9.SeCrEtTOKEN.AbCd"
        try:
            raise ValueError(f"failed at https://lectern.example/password/reset/{token}")
        except ValueError:
            logging.getLogger("webapp.errors").exception("link /invite/%s failed", token)
    (rec,) = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert rec["request_id"] == "abc123" and rec["user_id"] == student.id
    assert rec["level"] == "ERROR" and rec["logger"] == "webapp.errors"
    assert rec["message"] == "link /invite/[redacted] failed"
    assert "/password/reset/[redacted]" in rec["exc"] and "SeCrEt" not in json.dumps(rec)


def test_a_streamed_answer_is_logged_once_it_is_sent(app, captured, teacher):
    """A CSV export streams for seconds: its access line comes when the last byte went out,
    with the whole duration, not when the first was ready."""
    from tests.conftest import make_course

    course = make_course(teacher, title="History", sections=1, blocks=2)
    json_app = create_app(base_config(LOG_FORMAT="json"))
    json_app.test_client_class = IsolatedClient
    c = json_app.test_client()
    login_as(c, teacher)
    resp = c.get(f"/teach/courses/{course.id}/gradebook.csv")
    assert resp.status_code == 200 and resp.is_streamed
    assert captured.getvalue() == ""  # not sent yet
    resp.get_data()
    resp.close()
    (line,) = [json.loads(x) for x in captured.getvalue().splitlines()]
    assert line["logger"] == "lectern.access" and line["status"] == 200
    assert line["route"] == "/teach/courses/<int:course_id>/gradebook.csv"
    assert line["user_id"] == teacher.id and line["request_id"] == resp.headers["X-Request-ID"]


def test_log_format_defaults_and_refusal(monkeypatch, tmp_path):
    from webapp import config as config_module

    assert create_app(base_config()).config["LOG_FORMAT"] == "text"  # testing
    assert create_app(base_config(LOG_FORMAT="JSON")).config["LOG_FORMAT"] == "json"
    with pytest.raises(config_module.ConfigError, match="LOG_FORMAT must be json or text"):
        create_app(base_config(LOG_FORMAT="xml"))
    assert logs.choose_format("", "production") == "json"
    assert logs.choose_format(None, "development") == "text"
    assert logs.choose_format("text", "production") == "text"


def test_the_request_id_is_there_for_an_answer_refused_before_any_view(app, client):
    """The request id is made first: a CSRF refusal (a hook that runs before the app's own)
    has it too."""
    app.config["WTF_CSRF_ENABLED"] = True
    resp = client.post("/login", data={"email": "a@example.com", "password": "x"})
    assert resp.status_code == 400
    assert len(resp.headers["X-Request-ID"]) == 12


# --- gunicorn: several workers, one count ----------------------------------------------------


def _stale_counter(directory: Path) -> None:
    """A counter file left by an earlier run: gunicorn.conf.py empties the directory."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    stale = MmapedDict(str(directory / "histogram_999999.db"))
    key = mmap_key(
        "flask_http_request_duration_seconds",
        "flask_http_request_duration_seconds_count",
        ["method", "endpoint", "status"],
        ["GET", "site.readyz", "200"],
        "Flask HTTP request duration in seconds",
    )
    stale.write_value(key, 1000.0, 0.0)
    stale.close()


def _get(url: str, **headers) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_gunicorn_workers_counts_add_up_and_logs_are_json(app, tmp_path):
    """Two sync workers: one is held by a request whose headers have not all arrived, so the
    other serves the next requests; then the first serves its own. A scrape (from either
    worker) counts them all, and every line gunicorn and the app wrote is JSON."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    _stale_counter(metrics_dir)
    env = {
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with gunicorn(tmp_path, workers=2, **env) as (base, _, log_path):
        port = int(base.rpartition(":")[2])
        held = socket.create_connection(("127.0.0.1", port), timeout=10)
        held.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # not finished
        for _ in range(5):
            assert _get(base + "/readyz")[0] == 200
        held.sendall(b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := held.recv(65536):
            answer += chunk
        held.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer
        pids = {p.name.split("_")[1].split(".")[0] for p in metrics_dir.glob("histogram_*")}
        assert len(pids) == 2, pids  # both workers counted requests
        status, text = _get(base + "/metrics", Authorization=f"Bearer {TOKEN}")
        assert status == 200, text
        samples = parse(text)
        assert requests_of(samples, endpoint="site.readyz") == 6
        assert value(samples, "lectern_outbox_pending") == 0
        assert _get(base + "/metrics")[0] == 401
    lines = log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line, gunicorn's too, is JSON
    booting = [r for r in records if r["logger"] == "gunicorn.error" and "Booting" in r["message"]]
    assert len(booting) == 2
    access = [r for r in records if r["logger"] == "lectern.access"]
    assert len([r for r in access if r["endpoint"] == "site.readyz"]) == 6
    assert [r["status"] for r in access if r["endpoint"] == "metrics"] == [200, 401]
    assert not [r for r in records if r["logger"] == "gunicorn.access"]
