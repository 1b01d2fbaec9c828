"""tests/e2e/test_metrics.py — the OpenMetrics endpoint (`listen metrics ADDR:PORT`).

Against the control role under tests/e2e/control_driver.c (canned scheduler numbers, so every
sample value is known) and against a whole ternd. The exposition is parsed by a strict
OpenMetrics reader written here (TYPE before samples, counters as NAME_total, label syntax,
`# EOF` last) and, when python3-prometheus-client is installed, by its parser too. HTTP:
HTTP/1.0 and 1.1, HEAD, 404 / 405 / 400 / 431, 503 when the scheduler is gone, one response
per connection.

Owns: nothing beyond its drivers and ternds. Trusts: build/ (run make).
"""
import re
import socket
import time

import pytest

from test_mailq2 import (control_driver, make_driver, drv, start_live,  # noqa: F401  fixtures
                         wait_for, _submit)

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf"({NAME})(?:\{{(.*)\}})? (-?[0-9.eE+]+|NaN|[+-]Inf)")
LABEL = re.compile(rf'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_openmetrics(text):
    """{family: {"type", "help", "samples": {(name, labels): value}}}; asserts the syntax."""
    assert text.endswith("# EOF\n"), text[-40:]
    fams, cur = {}, None
    for line in text[:-len("# EOF\n")].split("\n")[:-1]:
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert re.fullmatch(NAME, name) and name not in fams, line
            assert typ in ("counter", "gauge", "info", "stateset", "histogram", "summary",
                           "gaugehistogram", "unknown"), line
            fams[name] = {"type": typ, "help": None, "samples": {}}
            cur = name
        elif line.startswith("# HELP "):
            _, _, name, help_ = line.split(" ", 3)
            assert name == cur and fams[cur]["help"] is None and help_, line
            fams[cur]["help"] = help_
        else:
            assert not line.startswith("#"), line
            m = SAMPLE.fullmatch(line)
            assert m and cur, line
            name, labels, value = m[1], m[2], m[3]
            want = cur + "_total" if fams[cur]["type"] == "counter" else cur
            assert name == want, (line, cur)
            lab = ()
            if labels:
                pairs = labels.split('",')
                got = LABEL.findall(labels)
                assert len(got) == len(pairs), line
                lab = tuple(got)
            assert (name, lab) not in fams[cur]["samples"], line
            fams[cur]["samples"][(name, lab)] = float(value)
    return fams


def http(port, request, host="127.0.0.1"):
    """(status line, {header: value}, body bytes) of one request; the server closes."""
    with socket.create_connection((host, port), timeout=15) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, _, v in (l.partition(": ") for l in lines[1:])}
    return lines[0], headers, body


def scrape(port):
    status, headers, body = http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == "HTTP/1.1 200 OK", (status, body)
    assert headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert int(headers["content-length"]) == len(body)
    assert headers["connection"] == "close"
    return body.decode()


def value(fams, fam, **labels):
    f = fams[fam]
    name = fam + "_total" if f["type"] == "counter" else fam
    return f["samples"][(name, tuple(sorted(labels.items())))]


def test_exposition_values(drv):
    fams = parse_openmetrics(scrape(drv.metrics))
    assert value(fams, "tern_messages_received") == 12
    assert value(fams, "tern_messages_transmitted") == 9
    assert value(fams, "tern_recipients_received") == 20
    assert value(fams, "tern_recipients_transmitted") == 15
    assert value(fams, "tern_queue_messages") == 3
    assert value(fams, "tern_queue_recipients") == 5
    assert value(fams, "tern_deliveries_running") == 2
    assert value(fams, "tern_threads") == 3
    assert value(fams, "tern_uptime_seconds") == 3723
    assert value(fams, "tern_start_time_seconds") == 1000000 - 3723
    assert value(fams, "tern_channel_limit", channel="local") == 10
    assert value(fams, "tern_channel_limit", channel="smtp") == 20
    assert value(fams, "tern_channel_running", channel="smtp") == 1
    assert value(fams, "tern_channel_threads", channel="smtp") == 2
    for f in fams.values():
        assert f["help"], f
    assert drv.requests() == ["snapshot 0 - -"]


def test_prometheus_client_parses_it(drv):
    parser = pytest.importorskip("prometheus_client.openmetrics.parser")
    names = {f.name for f in parser.text_string_to_metric_families(scrape(drv.metrics))}
    assert {"tern_messages_received", "tern_channel_limit", "tern_queue_messages"} <= names


@pytest.mark.parametrize("request_,status", [
    (b"GET /metrics HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK"),
    (b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", "HTTP/1.1 200 OK"),
    (b"GET /metrics HTTP/1.0\n\n", "HTTP/1.1 200 OK"),
    (b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
    (b"GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
    (b"GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 400 Bad Request"),
    (b"hello\r\n\r\n", "HTTP/1.1 400 Bad Request"),
    (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
     "HTTP/1.1 431 Request Header Fields Too Large"),
], ids=["1.0", "query", "lf", "root", "prefix", "post", "http2", "garbage", "huge"])
def test_http(drv, request_, status):
    got, headers, body = http(drv.metrics, request_)
    assert got == status, body
    assert int(headers["content-length"]) == len(body)


def test_head_has_no_body(drv):
    status, headers, body = http(drv.metrics, b"HEAD /metrics HTTP/1.1\r\n\r\n")
    assert status == "HTTP/1.1 200 OK" and body == b""
    assert int(headers["content-length"]) > 100


def test_scheduler_gone_is_503(drv):
    drv.send("close scheduler")
    status, _, _ = http(drv.metrics, b"GET /metrics HTTP/1.1\r\n\r\n")
    assert status == "HTTP/1.1 503 Service Unavailable"


def test_half_request_times_out(drv):
    with socket.create_connection(("127.0.0.1", drv.metrics), timeout=20) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        t0 = time.monotonic()
        data = s.recv(1000)
        assert data.startswith(b"HTTP/1.1 408 Request Timeout")
        assert 8 < time.monotonic() - t0 < 15


def test_live_counters_move(make_tern, workdir):
    t = start_live(make_tern, workdir, listen_kind="metrics")
    assert wait_for(lambda: _scrape_ok(t.extra_port), 10), t.log_tail()
    before = parse_openmetrics(scrape(t.extra_port))
    assert value(before, "tern_channel_limit", channel="local") == 10
    assert value(before, "tern_channel_limit", channel="smtp") == 20
    _submit(t, ["a@remote.test", "b@remote.test"])

    def moved():
        f = parse_openmetrics(scrape(t.extra_port))
        return f if value(f, "tern_messages_received") >= \
            value(before, "tern_messages_received") + 1 else None
    after = wait_for(moved)
    assert after, t.log_tail()
    assert value(after, "tern_recipients_received") >= value(before, "tern_recipients_received") + 2
    assert value(after, "tern_queue_messages") >= 1
    assert value(after, "tern_uptime_seconds") >= 0


def _scrape_ok(port):
    try:
        return http(port, b"GET /metrics HTTP/1.0\r\n\r\n")[0] == "HTTP/1.1 200 OK"
    except OSError:
        return False
