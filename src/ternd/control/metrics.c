/* metrics — the OpenMetrics endpoint of the control role (`listen metrics ADDR:PORT`):
 * `GET /metrics` (HTTP/1.0 or 1.1, one request per connection, then close) answers the
 * scheduler's counters and gauges (M_SCHED_SNAPSHOT, formatted by mailq2_fmt_metrics, the
 * numbers behind MAILQ's SHOW SNMP plus per-channel gauges). Any other path is 404, another
 * method 405, a malformed request 400, a scheduler that does not answer 503.
 * Each connection is an io (src/lib/io.h); the request waits in its input until complete.
 * Owns: the HTTP connections. Trusts: nothing a client sends — the request is bounded in
 * size (8 KiB) and time (10 s) and only its request line is looked at. */
#include "ternd/control/control.h"
#include "ternd/proto.h"
#include "mail/mailq2.h"
#include "lib/ev.h"
#include "lib/io.h"
#include "lib/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MT_MAXREQ   8192
#define MT_TIMEOUT  10000            /* from the connect to the last octet of the answer */

struct mt_conn {
	struct io *io;               /* the connection (src/lib/io.h) */
	struct ev *timer;            /* the whole exchange's deadline, however busy */
	int head;                    /* HEAD request (no body) */
	int answered;                /* the answer is queued: close once it is sent */
};

static void mt_free(struct mt_conn *c)
{
	control_cancel(c);
	ev_free(c->timer);
	io_free(c->io);
	free(c);
}

static void mt_respond(struct mt_conn *c, const char *status, const char *type,
                       const char *body, size_t len)
{
	c->answered = 1;
	io_set_read(c->io, 0);
	io_drop(c->io, io_datalen(c->io));      /* the request is not looked at again */
	io_printf(c->io, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	          "Connection: close\r\n\r\n", status, type, len);
	if (!c->head)
		io_write(c->io, body, len);
	if (io_flush(c->io) < 0)
		mt_free(c);                          /* the client is gone */
}

static void mt_text(struct mt_conn *c, const char *status)
{
	char body[128];
	int n = snprintf(body, sizeof body, "%s\n", status);
	mt_respond(c, status, "text/plain; charset=utf-8", body, (size_t)n);
}

static void mt_on_snapshot(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct mt_conn *c = arg;
	struct mq2_snap s;
	if (fd >= 0)
		close(fd);
	if (type != M_SCHED_SNAPSHOT_RESULT || mailq2_snap_decode(r, &s) < 0) {
		mt_text(c, "503 Service Unavailable");
		return;
	}
	struct buf body;
	buf_init(&body);
	mailq2_fmt_metrics(&body, &s);
	mt_respond(c, "200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8",
	           body.p, body.len);
	buf_free(&body);
	mailq2_snap_free(&s);
}

/* the request line: METHOD SP TARGET SP HTTP/1.x */
static void mt_request(struct mt_conn *c, const char *line, size_t n)
{
	char m[8], target[2048], ver[16];
	char tmp[2100];
	if (n >= sizeof tmp) {
		mt_text(c, "414 URI Too Long");
		return;
	}
	memcpy(tmp, line, n);
	tmp[n] = '\0';
	if (sscanf(tmp, "%7s %2047s %15s", m, target, ver) != 3 ||
	    (strcmp(ver, "HTTP/1.0") != 0 && strcmp(ver, "HTTP/1.1") != 0)) {
		mt_text(c, "400 Bad Request");
		return;
	}
	c->head = strcmp(m, "HEAD") == 0;
	size_t pl = strcspn(target, "?");
	if (pl != 8 || strncmp(target, "/metrics", 8) != 0)
		mt_text(c, "404 Not Found");
	else if (strcmp(m, "GET") != 0 && !c->head)
		mt_text(c, "405 Method Not Allowed");
	else {
		struct msg q;
		msg_init(&q, M_SCHED_SNAPSHOT, 0);
		msg_u64(&q, 0);
		msg_str(&q, "");
		msg_str(&q, "");
		io_set_read(c->io, 0);
		control_ask(R_SCHED, &q, mt_on_snapshot, c);
	}
}

/* the end of the header block: an empty line (CRLF or LF) */
static const char *mt_head_end(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (p[i] == '\n' && (p[i + 1] == '\n' ||
		    (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')))
			return p + i;
	return NULL;
}

/* the request so far (left buffered in io until it is complete) */
static void mt_on_data(struct mt_conn *c)
{
	size_t n;
	const char *p = io_data(c->io, &n);
	const char *end = mt_head_end(p, n);
	if ((end ? (size_t)(end - p) : n) > MT_MAXREQ) {
		mt_text(c, "431 Request Header Fields Too Large");
		return;
	}
	if (!end)
		return;
	size_t ll = 0;
	while (ll < n && p[ll] != '\r' && p[ll] != '\n')
		ll++;
	mt_request(c, p, ll);
}

static void mt_io(struct io *io, int evt, void *arg)
{
	struct mt_conn *c = arg;
	if (evt == IO_DATAIN && !c->answered)
		mt_on_data(c);
	else if (evt == IO_LOWAT && c->answered)
		mt_free(c);                          /* all said */
	else if (evt == IO_DISCONNECTED || evt == IO_ERROR)
		mt_free(c);
}

static void mt_on_timeout(int fd, short what, void *arg)
{
	struct mt_conn *c = arg;
	if (c->answered)
		mt_free(c);
	else
		mt_text(c, "408 Request Timeout");
}

void metrics_accept(int fd, const struct sockaddr *peer, socklen_t len)
{
	struct mt_conn *c = xcalloc(1, sizeof *c);
	c->io = io_new(fd, mt_io, c);
	c->timer = ev_new(-1, 0, mt_on_timeout, c);
	ev_add(c->timer, MT_TIMEOUT);
}
