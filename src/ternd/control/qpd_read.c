/* qp_read — the queue protocol's read commands (see qp.h): QINFO QHEAD QBODY QBRAW QRETR
 * QGREP QSRCH and QADDQ. Each asks the queue for the entry (M_Q_READ: the envelope text and
 * a read-only descriptor of the data), then works on the data:
 *
 *   stored data (LF line ends) ──pread──► LF -> CRLF ──► skip/limit ──► the client, or a
 *                                                                      search, or QADDQ
 *
 * Sizes and offsets on the wire count CRLF line ends, so that what a client stored with
 * QSTOR MESSAGE is what it reads back. The header is every line before the first empty line,
 * the body every line after it; the empty line belongs to neither (as in Bongo).
 * Owns: the descriptor it is handed, until the command ends. Trusts: the queue's answer;
 * reads the file with pread and never trusts its size beyond what pread returns. */
#include "ternd/control/qpd.h"
#include "ternd/control/control.h"
#include "ternd/proto.h"
#include "lib/log.h"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QP_CHUNK   32768               /* file octets read at a time */
#define QP_HDRMAX  (1024 * 1024)       /* QGREP / QSRCH HEADER read at most this much header */
#define QP_STREAM_HIGH (128 * 1024)    /* read the file on while less output than this waits */

struct qp_view {                       /* one entry, as M_Q_READ gave it */
	uint64_t id;
	unsigned stage;
	int fd;
	uint64_t size;                     /* octets in the file (LF line ends) */
	const char *env;                   /* envelope text */
	struct qp_split sp;
};

typedef void (*qp_view_fn)(struct qpd_sess *s, struct qp_view *v);

/* ---- the data as wire octets ----------------------------------------------------------- */

/* the next piece of src as CRLF octets into out (room for 2 * QP_CHUNK): its length, 0 at the
 * end, -1 when the file ends early or cannot be read */
static ssize_t qp_wire_chunk(struct qpd_src *src, char *out)
{
	char raw[QP_CHUNK];
	while (src->left > 0 && src->foff < src->fend) {
		uint64_t want = src->fend - src->foff < QP_CHUNK ? src->fend - src->foff : QP_CHUNK;
		ssize_t n = pread(src->fd, raw, (size_t)want, (off_t)src->foff);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		src->foff += (uint64_t)n;
		size_t w = qp_lf2crlf(raw, (size_t)n, out), off = 0;
		if (src->skip) {
			off = src->skip < w ? (size_t)src->skip : w;
			src->skip -= off;
		}
		size_t take = w - off < src->left ? w - off : (size_t)src->left;
		if (take == 0)
			continue;
		memmove(out, out + off, take);
		src->left -= take;
		return (ssize_t)take;
	}
	return 0;
}

/* call fn on every wire piece of file [foff, fend) after skip octets, at most left octets;
 * fn returns 1 to stop. 0, or -1 on a read error */
static int qp_wire_each(int fd, uint64_t foff, uint64_t fend, uint64_t skip, uint64_t left,
                        int (*fn)(void *arg, const char *p, size_t n), void *arg)
{
	struct qpd_src src = { .fd = fd, .foff = foff, .fend = fend, .skip = skip, .left = left };
	char *out = xmalloc(2 * QP_CHUNK);
	ssize_t n;
	while ((n = qp_wire_chunk(&src, out)) > 0)
		if (fn(arg, out, (size_t)n))
			break;
	free(out);
	return n < 0 ? -1 : 0;
}

void qpd_stream(struct qpd_sess *s, int fd, uint64_t foff, uint64_t fend, uint64_t skip,
               uint64_t left, const char *trailer)
{
	s->src.fd = fd;
	s->src.foff = foff;
	s->src.fend = fend;
	s->src.skip = skip;
	s->src.left = left;
	snprintf(s->src.trailer, sizeof s->src.trailer, "%s", trailer);
	s->wait = QW_STREAM;
}

int qpd_stream_pump(struct qpd_sess *s)
{
	char out[2 * QP_CHUNK];
	if (qpd_queued(s) >= QP_STREAM_HIGH)
		return 0;                     /* more once the socket drains (IO_LOWAT) */
	ssize_t n = s->src.left ? qp_wire_chunk(&s->src, out) : 0;
	if (n > 0) {
		qpd_write(s, out, (size_t)n);
		return 1;
	}
	close(s->src.fd);
	s->src.fd = -1;
	s->wait = QW_NONE;
	if (n < 0 || s->src.left > 0) {   /* the byte count we announced cannot be kept */
		log_err("event=qp_read_error sid=%u error=\"%s\"", s->id, strerror(errno));
		qpd_sess_close(s, "read_error");
		return 1;
	}
	qpd_write(s, s->src.trailer, strlen(s->src.trailer));
	return 1;
}

/* feed the data to the splitter; header_only: stop once the header is complete */
static int qp_scan_to(int fd, uint64_t size, struct qp_split *sp, int header_only)
{
	char buf[QP_CHUNK];
	qp_split_init(sp);
	for (uint64_t off = 0; off < size && !(header_only && sp->found);) {
		ssize_t n = pread(fd, buf, size - off < sizeof buf ? (size_t)(size - off) : sizeof buf,
		                  (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		qp_split_feed(sp, buf, (size_t)n);
		off += (uint64_t)n;
	}
	return 0;
}

int qpd_scan(int fd, uint64_t size, struct qp_split *sp) { return qp_scan_to(fd, size, sp, 0); }

static uint64_t qp_total_wire(const struct qp_view *v)
{
	return qp_split_hwire(&v->sp) + qp_split_bwire(&v->sp, v->size) + (v->sp.found ? 2 : 0);
}

/* ---- the commands ------------------------------------------------------------------------ */

static void qp_view_info(struct qpd_sess *s, struct qp_view *v)
{
	char name[24];
	qp_entry_format(name, v->stage, v->id);
	qpd_say(s, 2001, "%s %" PRIu64 " %" PRIu64 " %" PRIu64 " 0 0 0 0", name, qp_total_wire(v),
	       qp_split_hwire(&v->sp), qp_split_bwire(&v->sp, v->size));
	close(v->fd);
}

static void qp_view_head(struct qpd_sess *s, struct qp_view *v)
{
	uint64_t n = qp_split_hwire(&v->sp);
	qpd_say(s, 2023, "%" PRIu64 " Message header follows", n);
	qpd_stream(s, v->fd, 0, v->sp.hbytes, 0, n, "1000 OK\r\n");
}

static void qp_view_body(struct qpd_sess *s, struct qp_view *v)
{
	uint64_t n = qp_split_bwire(&v->sp, v->size);
	qpd_say(s, 2023, "%" PRIu64 " Message body follows", n);
	qpd_stream(s, v->fd, v->sp.bstart, v->sp.found ? v->size : 0, 0, n, "1000 OK\r\n");
}

static void qp_view_braw(struct qpd_sess *s, struct qp_view *v)
{
	uint64_t total = qp_split_bwire(&v->sp, v->size), start = s->cmd.num[1];
	uint64_t n = start < total ? total - start : 0;
	if (s->cmd.num[2] < n)
		n = s->cmd.num[2];
	qpd_say(s, 2021, "%" PRIu64 " Partial body follows", n);
	qpd_stream(s, v->fd, v->sp.bstart, v->sp.found ? v->size : 0, start, n, "1000 OK\r\n");
}

static void qp_view_ctrl(struct qpd_sess *s, struct qp_view *v)
{
	struct envelope e;
	struct buf b;
	size_t valid;
	char err[128];
	close(v->fd);
	env_init(&e);
	buf_init(&b);
	if (env_parse(v->env, strlen(v->env), &e, &valid, err, sizeof err) < 0)
		qpd_say(s, 4224, "Cannot read queue entry");
	else {
		qp_ctrl_build(&b, &e, qpd_islocal, NULL);
		qpd_say(s, 2022, "%zu INFO follows", b.len);
		qpd_write(s, b.p, b.len);
		qpd_say(s, 1000, "OK");
	}
	buf_free(&b);
	env_free(&e);
}

static void qp_view_retr(struct qpd_sess *s, struct qp_view *v)
{
	if (s->cmd.num[1] == 0) {
		qp_view_ctrl(s, v);
		return;
	}
	uint64_t n = qp_total_wire(v);
	qpd_say(s, 2023, "%" PRIu64 " MESSAGE follows", n);
	qpd_stream(s, v->fd, 0, v->size, 0, n, "1000 OK\r\n");
}

/* the header (LF form, at most QP_HDRMAX octets) into a malloc'd buffer */
static char *qp_header(struct qp_view *v, size_t *len)
{
	uint64_t n = v->sp.hbytes < QP_HDRMAX ? v->sp.hbytes : QP_HDRMAX;
	char *h = xmalloc((size_t)n + 1);
	size_t got = 0;
	while (got < n) {
		ssize_t k = pread(v->fd, h + got, (size_t)n - got, (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	h[got] = '\0';
	*len = got;
	return h;
}

/* call fn(arg, line, n) for every physical header line of field and its continuations;
 * returns how many fields matched */
static int qp_header_each(const char *h, size_t len, const char *field,
                          void (*fn)(void *arg, const char *line, size_t n), void *arg)
{
	int in = 0, hits = 0;
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(h + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (h + off)) : len - off;
		const char *line = h + off;
		if (line[0] == ' ' || line[0] == '\t')
			;                                  /* continuation: stays with its field */
		else
			in = qp_hdr_is(line, n, field);
		hits += in && line[0] != ' ' && line[0] != '\t';
		if (in)
			fn(arg, line, n);
		off += n + 1;
	}
	return hits;
}

static void qp_grep_line(void *arg, const char *line, size_t n)
{
	struct qpd_sess *s = arg;
	qpd_write(s, "2002-", 5);
	qpd_write(s, line, n);
	qpd_write(s, "\r\n", 2);
}

static void qp_view_grep(struct qpd_sess *s, struct qp_view *v)
{
	size_t len;
	char *h = qp_header(v, &len);
	close(v->fd);
	qp_header_each(h, len, s->cmd.argv[1], qp_grep_line, s);
	qpd_say(s, 1000, "OK");
	free(h);
}

struct qp_hsrch { const char *needle; int found; size_t skip; };

static void qp_hsrch_line(void *arg, const char *line, size_t n)
{
	struct qp_hsrch *h = arg;
	size_t k = h->skip < n && line[0] != ' ' && line[0] != '\t' ? h->skip : 0;
	if (qp_find(line + k, n - k, h->needle, strlen(h->needle)) >= 0)
		h->found = 1;
}

static void qp_view_srch_header(struct qpd_sess *s, struct qp_view *v)
{
	size_t len;
	char *h = qp_header(v, &len);
	const char *field = s->cmd.argv[1];
	struct qp_hsrch hs = { s->cmd.argc > 2 ? s->cmd.argv[2] : "", 0, strlen(field) };
	close(v->fd);
	int hits = qp_header_each(h, len, field, qp_hsrch_line, &hs);
	if (hits && (hs.found || s->cmd.argc < 3))
		qpd_say(s, 1000, "Content found");
	else
		qpd_say(s, 4262, "Content not found");
	free(h);
}

/* a search across pieces: the last m-1 octets of one piece go before the next */
struct qp_bsrch { const char *needle; size_t m; char *tail; size_t ntail; int found; };

static int qp_bsrch_piece(void *arg, const char *p, size_t n)
{
	struct qp_bsrch *b = arg;
	char *buf = xmalloc(b->ntail + n);
	memcpy(buf, b->tail, b->ntail);
	memcpy(buf + b->ntail, p, n);
	size_t all = b->ntail + n;
	b->found = qp_find(buf, all, b->needle, b->m) >= 0;
	b->ntail = all < b->m - 1 ? all : b->m - 1;
	memcpy(b->tail, buf + all - b->ntail, b->ntail);
	free(buf);
	return b->found;
}

static void qp_search(struct qpd_sess *s, struct qp_view *v, const char *needle, uint64_t skip,
                      uint64_t left)
{
	struct qp_bsrch b = { needle, strlen(needle), NULL, 0, 0 };
	b.tail = xmalloc(b.m);
	int rc = v->sp.found ? qp_wire_each(v->fd, v->sp.bstart, v->size, skip, left,
	                                    qp_bsrch_piece, &b) : 0;
	close(v->fd);
	if (rc < 0)
		qpd_say(s, 4224, "Cannot read queue entry");
	else if (b.found)
		qpd_say(s, 1000, "Content found");
	else
		qpd_say(s, 4262, "Content not found");
	free(b.tail);
}

static void qp_view_srch_body(struct qpd_sess *s, struct qp_view *v)
{
	qp_search(s, v, s->cmd.argv[1], 0, UINT64_MAX);
}

static void qp_view_srch_braw(struct qpd_sess *s, struct qp_view *v)
{
	uint64_t start = s->cmd.num[1], end = s->cmd.num[2];
	if (end < start) {
		close(v->fd);
		qpd_say(s, 3010, "Bad arguments");
		return;
	}
	qp_search(s, v, s->cmd.argv[3], start, end - start);
}

/* QADDQ <entry> <start> <length>: octets of another entry (wire offsets, whole message)
 * appended to the entry being created */
static int qp_addq_piece(void *arg, const char *p, size_t n)
{
	struct qpd_sess *s = arg;
	char out[2 * QP_CHUNK + 1];
	size_t o = qp_crlf_feed(&s->crlf, p, n, out);
	return qpd_new_write(s, out, o) < 0;
}

static void qp_view_addq(struct qpd_sess *s, struct qp_view *v)
{
	char out[2];
	memset(&s->crlf, 0, sizeof s->crlf);
	int rc = s->cmd.num[2] ? qp_wire_each(v->fd, 0, v->size, s->cmd.num[1], s->cmd.num[2],
	                                      qp_addq_piece, s) : 0;
	close(v->fd);
	size_t o = qp_crlf_end(&s->crlf, out);
	if (o)
		qpd_new_write(s, out, o);
	if (s->nw && !s->nw->started)
		qpd_new_write(s, "", 0);
	if (rc < 0)
		qpd_say(s, 4224, "Cannot read queue entry");
	else if (!s->nw || qpd_new_flush(s->nw) < 0)
		qpd_say(s, s->nw && s->nw->toobig ? 5220 : 5221, "Cannot add to the entry");
	else
		qpd_say(s, 1000, "Entry made");
}

/* per verb: the handler, and whether it needs the header/body split of the whole data (2),
 * of the header only (1) or none (0) */
static const struct { enum qp_verb verb; qp_view_fn fn; int scan; } qp_views[] = {
	{ QP_QINFO, qp_view_info, 2 },          { QP_QHEAD, qp_view_head, 1 },
	{ QP_QBODY, qp_view_body, 2 },          { QP_QBRAW, qp_view_braw, 2 },
	{ QP_QRETR, qp_view_retr, 2 },          { QP_QGREP, qp_view_grep, 1 },
	{ QP_QSRCH_HEADER, qp_view_srch_header, 1 }, { QP_QSRCH_BODY, qp_view_srch_body, 1 },
	{ QP_QSRCH_BRAW, qp_view_srch_braw, 1 }, { QP_QADDQ, qp_view_addq, 0 },
};

static int qp_scan_header(int fd, uint64_t size, struct qp_split *sp)
{
	return qp_scan_to(fd, size, sp, 1);
}

static void qp_read_answer(struct qpd_sess *s, uint32_t type, struct msg_reader *r, int fd)
{
	struct qp_view v = { .id = s->cmd.ent.id, .fd = fd };
	uint64_t status = QS_ERROR;
	if (type == M_Q_READ_RESULT) {
		status = msg_get_u64(r);
		v.env = msg_get_str(r);
		v.size = msg_get_u64(r);
		v.stage = (unsigned)msg_get_u64(r);
		if (msg_done(r) < 0)
			status = QS_ERROR;
	}
	size_t i = 0;
	while (i < sizeof qp_views / sizeof qp_views[0] && qp_views[i].verb != s->cmd.verb)
		i++;
	int scan = i < sizeof qp_views / sizeof qp_views[0] ? qp_views[i].scan : -1;
	if (status == QS_OK && fd >= 0 && scan >= 0 &&
	    (scan == 0 || (scan == 1 ? qp_scan_header(fd, v.size, &v.sp)
	                             : qpd_scan(fd, v.size, &v.sp)) == 0)) {
		qp_views[i].fn(s, &v);
		return;
	}
	if (fd >= 0)
		close(fd);
	if (type == 0)
		qpd_say(s, 5004, "Internal error, try again later");
	else
		qpd_say(s, 4224, "Cannot read queue entry");
}

void qpd_read_cmd(struct qpd_sess *s)
{
	struct msg m;
	if (s->cmd.verb == QP_QADDQ && !s->nw) {
		qpd_say(s, 4260, "No queue entry open");
		return;
	}
	msg_init(&m, M_Q_READ, 0);
	msg_u64(&m, s->cmd.ent.id);
	qpd_ask(s, R_QUEUE, &m, qp_read_answer);
}

/* ---- QSRCH DOMAIN: is mail for the domain waiting in the queue? --------------------------- */

static int qp_domain_match(const char *addr, const char *dom)
{
	const char *at = strrchr(addr, '@');
	return at && str_casecmp(at + 1, dom) == 0;
}

/* one page of M_Q_LIST_RESULT: 1 found, 0 not in this page, -1 malformed; *more = the
 * listing goes on */
static int qp_list_page(struct qpd_sess *s, struct msg_reader *r, int *more)
{
	uint64_t total = msg_get_u64(r), n = msg_get_u64(r);
	int found = 0;
	for (uint64_t i = 0; i < n && !r->err; i++) {
		for (int k = 0; k < 3; k++)
			(void)msg_get_u64(r);           /* msgid, arrival, size */
		(void)msg_get_str(r);
		for (int k = 0; k < 3; k++)
			(void)msg_get_u64(r);           /* kind, held, stage */
		uint64_t ns = msg_get_u64(r);
		for (uint64_t j = 0; j < ns && !r->err; j++) {
			const char *addr = msg_get_str(r);
			uint64_t state = msg_get_u64(r);
			(void)msg_get_u64(r);
			(void)msg_get_u64(r);
			(void)msg_get_str(r);
			if ((state == SL_UNROUTED || state == SL_ROUTED) && qp_domain_match(addr, s->cmd.argv[0]))
				found = 1;
		}
	}
	if (msg_done(r) < 0)
		return -1;
	s->listoff += n;
	*more = n > 0 && s->listoff < total;
	return found;
}

static void qp_list_answer(struct qpd_sess *s, uint32_t type, struct msg_reader *r, int fd)
{
	int more = 0, found = type == M_Q_LIST_RESULT ? qp_list_page(s, r, &more) : -1;
	if (fd >= 0)
		close(fd);
	if (found < 0)
		qpd_say(s, 5230, "Internal error");
	else if (found)
		qpd_say(s, 1000, "OK");
	else if (!more)
		qpd_say(s, 4261, "Domain not in cache");
	else {
		struct msg m;
		msg_init(&m, M_Q_LIST, 0);
		msg_u64(&m, s->listoff);
		msg_u64(&m, 1000);
		qpd_ask(s, R_QUEUE, &m, qp_list_answer);
	}
}

void qpd_srch_domain(struct qpd_sess *s)
{
	struct msg m;
	s->listoff = 0;
	msg_init(&m, M_Q_LIST, 0);
	msg_u64(&m, 0);
	msg_u64(&m, 1000);
	qpd_ask(s, R_QUEUE, &m, qp_list_answer);
}
