/* metrics — the OpenMetrics endpoint of the control role (`listen metrics ADDR:PORT`):
 * `GET /metrics` (HTTP/1.0 or 1.1, one request per connection, then close) answers the
 * scheduler's counters and gauges (M_SCHED_SNAPSHOT, formatted by mailq2_fmt_metrics, the
 * numbers behind MAILQ's SHOW SNMP plus per-channel gauges). Any other path is 404, another
 * method 405, a malformed request 400, a scheduler that does not answer 503.
 * Owns: the HTTP connections. Trusts: nothing a client sends — the request is bounded in
 * size (8 KiB) and time (10 s) and only its request line is looked at. */
#include "ternd/control/control.h"
#include "ternd/proto.h"
#include "mail/mailq2.h"
#include "lib/ev.h"
#include "lib/log.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MT_MAXREQ   8192
#define MT_TIMEOUT  10000

struct mt_conn {
	int fd, head;                /* head: HEAD request (no body) */
	struct ev *rev, *wev, *timer;
	struct buf in, out;
	int answered;
};

static void mt_free(struct mt_conn *c)
{
	control_cancel(c);
	ev_free(c->rev);
	ev_free(c->wev);
	ev_free(c->timer);
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

static void mt_flush(struct mt_conn *c)
{
	if (buf_send(&c->out, c->fd) > 0) {
		if (!ev_pending(c->wev))
			ev_add(c->wev, -1);
		return;
	}
	mt_free(c);                              /* all said (or the client is gone) */
}

static void mt_on_write(int fd, short what, void *arg) { mt_flush(arg); }

static void mt_respond(struct mt_conn *c, const char *status, const char *type,
                       const char *body, size_t len)
{
	c->answered = 1;
	ev_del(c->rev);
	buf_printf(&c->out, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	           "Connection: close\r\n\r\n", status, type, len);
	if (!c->head)
		buf_add(&c->out, body, len);
	mt_flush(c);
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
		ev_del(c->rev);
		control_ask(R_SCHED, &q, mt_on_snapshot, c);
	}
}

/* the end of the header block: an empty line (CRLF or LF) */
static const char *mt_head_end(const struct buf *b)
{
	for (size_t i = 0; i + 1 < b->len; i++)
		if (b->p[i] == '\n' && (b->p[i + 1] == '\n' ||
		    (b->p[i + 1] == '\r' && i + 2 < b->len && b->p[i + 2] == '\n')))
			return b->p + i;
	return NULL;
}

static void mt_on_read(int fd, short what, void *arg)
{
	struct mt_conn *c = arg;
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof tmp);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mt_free(c);
		return;
	}
	buf_add(&c->in, tmp, (size_t)n);
	const char *end = mt_head_end(&c->in);
	if ((end ? (size_t)(end - c->in.p) : c->in.len) > MT_MAXREQ) {
		mt_text(c, "431 Request Header Fields Too Large");
		return;
	}
	if (!end)
		return;
	size_t ll = 0;
	while (ll < c->in.len && c->in.p[ll] != '\r' && c->in.p[ll] != '\n')
		ll++;
	mt_request(c, c->in.p, ll);
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
	c->fd = fd;
	buf_init(&c->in);
	buf_init(&c->out);
	c->rev = ev_new(fd, EV_R | EV_PERSIST, mt_on_read, c);
	c->wev = ev_new(fd, EV_W | EV_PERSIST, mt_on_write, c);
	c->timer = ev_new(-1, 0, mt_on_timeout, c);
	ev_add(c->rev, -1);
	ev_add(c->timer, MT_TIMEOUT);
}
