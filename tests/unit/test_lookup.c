/* test_lookup — the lookup role over real socketpairs: MAIL/RCPT checks (badmailfrom,
 * badrcptto, locals, rcpthosts, relayclients, postmaster, percent hack), M_ROUTE results
 * in proto.h's field order, and M_MX_RESOLVE from the mta peer answered without any DNS
 * server (address literals, bad input) or with a resolver nobody listens on (127.0.0.1, a
 * closed port: MX_TEMP within the timeout; nothing leaves the machine); a peer that closes
 * is replaced by the channel the parent hands over (M_PEER_NEW), and the role exits 0 when
 * its parent's channel closes. The role's sources are compiled into this test so that it
 * runs without the rest of ternd. Relay for authenticated sessions (M_RCPT_CHECK's optional
 * login) and for pop-before-smtp clients (a pop3 M_AUTH_CHECK that succeeded), and the
 * M_AUTH_RESULT fields. Resumable routing: with the fake asynchronous users backend of the
 * test build (local parts slow* answered later, tempslow* tempfailed later, tempnow*
 * tempfailed at once), a parked RCPT check or M_ROUTE is answered once its questions are,
 * with the frame id it came with, and requests sent after it are answered meanwhile. */
#define TERN_TEST 1                  /* the fake backend (lookup_backend.c) */
#include "t.h"
#include "ternd/lookup/lookup.c"
#include "ternd/lookup/lookup_session.c"
#include "ternd/lookup/lookup_backend.c"
#include "ternd/lookup/lookup_auth.c"
#include "ternd/lookup/lookup_authdir.c"
#include "ternd/lookup/dns.c"
#include "ternd/lookup/lookup_pop.c"
#include "ternd/lookup/ldapc.c"
#include "ternd/lookup/lookup_explain.c"
#include "ternd/lookup/lookup_ldap.c"
#include "ternd/lookup/lookup_tables.c"
#include "ternd/lookup/lookup_list.c"
#include "ternd/role.c"
#include <netinet/in.h>
#include <sys/stat.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>

static char dir[64];
static int smtp_fd, queue_fd, mta_fd, parent_fd, control_fd;
static int dead_port;

#define TEST_DNS_TIMEOUT_MS 1500

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void send_msg(int fd, struct msg *m)
{
	unsigned char *h = (unsigned char *)m->b.p;
	put32(h, (uint32_t)(m->b.len - MSG_HDRLEN));
	put32(h + 4, m->type);
	put32(h + 8, m->id);
	T_EQ_INT(write(fd, m->b.p, m->b.len), (long long)m->b.len);
	msg_discard(m);
}

/* read one whole frame, and not a byte more (several replies may be queued); returns its
 * payload in *b (reader set up in r) */
static int recv_msg(int fd, struct buf *b, uint32_t *type, uint32_t *id, struct msg_reader *r)
{
	buf_reset(b);
	size_t want = MSG_HDRLEN;
	for (;;) {
		int hasfd;
		long fl = msg_frame(b->p ? b->p : "", b->len, type, id, &hasfd);
		if (fl > 0) {
			msg_reader_init(r, b->p + MSG_HDRLEN, (size_t)fl - MSG_HDRLEN);
			return 0;
		}
		if (fl < 0)
			return -1;
		if (b->len >= MSG_HDRLEN) {
			const unsigned char *h = (const unsigned char *)b->p;
			want = MSG_HDRLEN + ((size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 |
			                     (size_t)h[3] << 24);
		}
		char tmp[4096];
		size_t ask = want - b->len < sizeof tmp ? want - b->len : sizeof tmp;
		ssize_t n = read(fd, tmp, ask);
		if (n <= 0)
			return -1;
		buf_add(b, tmp, (size_t)n);
	}
}

/* the M_CHECK_RESULT for frame id: its verdict (text: the log text), -1 if none came */
static int check_answer(uint32_t id, char *text)
{
	struct buf in;
	buf_init(&in);
	uint32_t type = 0, rid = 0;
	struct msg_reader r;
	int v = -1;
	if (recv_msg(smtp_fd, &in, &type, &rid, &r) == 0) {
		T_EQ_INT(type, M_CHECK_RESULT);
		T_EQ_INT(rid, id);
		v = (int)msg_get_u64(&r);
		snprintf(text, 256, "%s", msg_get_str(&r));
		T_EQ_INT(msg_done(&r), 0);
	}
	buf_free(&in);
	return v;
}

static int check(int msgtype, const char *a, const char *b, uint32_t id, char *text)
{
	struct msg m;
	msg_init(&m, (uint32_t)msgtype, id);
	msg_str(&m, a);
	if (b)
		msg_str(&m, b);
	send_msg(smtp_fd, &m);
	return check_answer(id, text);
}

static void test_checks(void)
{
	static const struct { int type; const char *a, *b; int v; } c[] = {
		{ M_MAIL_CHECK, "", NULL, V_OK },
		{ M_MAIL_CHECK, "someone@good.example", NULL, V_OK },
		{ M_MAIL_CHECK, "Spammer@Example.com", NULL, V_BAD },
		{ M_MAIL_CHECK, "anyone@EVIL.example", NULL, V_BAD },
		{ M_MAIL_CHECK, "<anyone@evil.example>", NULL, V_BAD },
		{ M_RCPT_CHECK, "192.0.2.1", "joe@example.com", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "joe-ext@example.com", V_OK },   /* no home: cannot tell */
		{ M_RCPT_CHECK, "192.0.2.1", "kim-foo@example.com", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "Kim-FOO@example.com", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "kim-bar@example.com", V_NOUSER },
		{ M_RCPT_CHECK, "192.0.2.1", "kim@example.com", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "staff@example.com", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "nobody@example.com", V_NOUSER },
		{ M_RCPT_CHECK, "192.0.2.1", "postmaster@example.com", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "PostMaster", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "joe", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "blocked@example.com", V_BAD },
		{ M_RCPT_CHECK, "192.0.2.1", "x@nasty.example", V_BAD },
		{ M_RCPT_CHECK, "192.0.2.1", "x@relay.example", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "x@sub.wild.example", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "x@other.example", V_NORELAY },
		{ M_RCPT_CHECK, "10.1.2.3", "x@other.example", V_OK },
		{ M_RCPT_CHECK, "::ffff:10.1.2.3", "x@other.example", V_OK },
		{ M_RCPT_CHECK, "2001:db8::7", "x@other.example", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "x%other.example@example.com", V_NORELAY },
		{ M_RCPT_CHECK, "10.0.0.1", "x%other.example@example.com", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "joe%example.com@example.com", V_OK },
		{ M_RCPT_CHECK, "192.0.2.1", "@@", V_NOUSER },
	};
	char text[256];
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int v = check(c[i].type, c[i].a, c[i].b, (uint32_t)(100 + i), text);
		if (v != c[i].v)
			fprintf(stderr, "case %zu (%s %s): v=%d text=%s\n", i, c[i].a,
			        c[i].b ? c[i].b : "", v, text);
		T_EQ_INT(v, c[i].v);
	}
}

/* M_RCPT_CHECK with the optional authenticated login (auth: NULL = left out) */
static int check3(const char *ip, const char *rcpt, const char *auth, uint32_t id, char *text)
{
	struct msg m;
	msg_init(&m, M_RCPT_CHECK, id);
	msg_str(&m, ip);
	msg_str(&m, rcpt);
	if (auth)
		msg_str(&m, auth);
	send_msg(smtp_fd, &m);
	return check_answer(id, text);
}

/* M_AUTH_CHECK -> M_AUTH_RESULT: verdict, delay, close, login */
static int auth(const char *svc, const char *ip, const char *mech, const char *login,
                const char *secret, uint32_t id, uint64_t *delay, char *canon)
{
	struct msg m;
	msg_init(&m, M_AUTH_CHECK, id);
	msg_str(&m, svc);
	msg_str(&m, ip);
	msg_str(&m, mech);
	msg_str(&m, login);
	msg_str(&m, "");
	msg_str(&m, secret);
	msg_str(&m, "");
	send_msg(smtp_fd, &m);
	struct buf in;
	buf_init(&in);
	uint32_t type = 0, rid = 0;
	struct msg_reader r;
	int v = -1;
	if (recv_msg(smtp_fd, &in, &type, &rid, &r) == 0) {
		T_EQ_INT(type, M_AUTH_RESULT);
		T_EQ_INT(rid, id);
		v = (int)msg_get_u64(&r);
		*delay = msg_get_u64(&r);
		T_EQ_INT(msg_get_u64(&r), 0);                 /* close */
		snprintf(canon, 256, "%s", msg_get_str(&r));
		T_EQ_INT(msg_done(&r), 0);
	}
	buf_free(&in);
	return v;
}

static void test_auth_relay(void)
{
	char text[256], canon[256];
	uint64_t delay = 99;
	/* authenticated sessions relay; an empty login or none is no authentication */
	T_EQ_INT(check3("192.0.2.9", "x@other.example", NULL, 200, text), V_NORELAY);
	T_EQ_INT(check3("192.0.2.9", "x@other.example", "", 201, text), V_NORELAY);
	T_EQ_INT(check3("192.0.2.9", "x@other.example", "joe", 202, text), V_OK);
	T_EQ_STR(text, "authenticated");
	T_EQ_INT(check3("192.0.2.9", "nobody@example.com", "joe", 203, text), V_NOUSER);
	/* a malformed one (a 4th field) is dropped: the next answer is the next request's */
	struct msg m;
	msg_init(&m, M_RCPT_CHECK, 204);
	msg_str(&m, "192.0.2.9");
	msg_str(&m, "x@other.example");
	msg_str(&m, "joe");
	msg_str(&m, "extra");
	send_msg(smtp_fd, &m);
	T_EQ_INT(check3("192.0.2.9", "x@other.example", "", 205, text), V_NORELAY);
	/* pop-before-smtp: a pop3 login lets its address relay; an smtp login does not */
	T_EQ_INT(auth("pop3", "192.0.2.9", "USER", "ann", "wrong", 206, &delay, canon), AUTH_FAIL);
	T_EQ_INT(delay, 1000);
	T_EQ_STR(canon, "");
	T_EQ_INT(check3("192.0.2.9", "x@other.example", NULL, 207, text), V_NORELAY);
	T_EQ_INT(auth("smtp", "192.0.2.8", "PLAIN", "ann", "annpw", 208, &delay, canon), AUTH_OK);
	T_EQ_STR(canon, "ann");
	T_EQ_INT(check3("192.0.2.8", "x@other.example", NULL, 209, text), V_NORELAY);
	T_EQ_INT(auth("pop3", "192.0.2.9", "USER", "Ann@Example.COM", "annpw", 210, &delay, canon),
	         AUTH_OK);
	T_EQ_STR(canon, "ann");
	T_EQ_INT(check3("192.0.2.9", "x@other.example", NULL, 211, text), V_OK);
	T_EQ_STR(text, "pop-before-smtp");
	T_EQ_INT(check3("192.0.2.9", "x@other.example", "", 212, text), V_OK);
	T_EQ_INT(check3("192.0.2.10", "x@other.example", NULL, 213, text), V_NORELAY);
}

static void pop_login(uint32_t id, const char *login, const char *pw, int extra)
{
	struct msg m;
	msg_init(&m, M_POP_LOGIN, id);
	msg_str(&m, "192.0.2.20");
	msg_str(&m, "USER");
	msg_str(&m, login);
	msg_str(&m, "");
	msg_str(&m, pw);
	msg_str(&m, "");
	if (extra)
		msg_str(&m, "extra");
	send_msg(smtp_fd, &m);
}

/* POP3: a refusal goes back to smtp (M_POP_RESULT), a success on to the parent, with the
 * users table's account (M_POP_SPAWN), both under the session's frame id */
static void test_pop_login(void)
{
	struct buf in;
	struct msg_reader r;
	uint32_t type = 0, rid = 0;
	char text[256];
	buf_init(&in);
	pop_login(300, "ann", "wrong", 0);
	T_EQ_INT(recv_msg(smtp_fd, &in, &type, &rid, &r), 0);
	T_EQ_INT(type, M_POP_RESULT);
	T_EQ_INT(rid, 300);
	T_EQ_INT(msg_get_u64(&r), AUTH_FAIL);
	T_CHECK(msg_get_u64(&r) > 0);               /* the throttle's delay */
	T_EQ_INT(msg_get_u64(&r), 0);
	T_EQ_STR(msg_get_str(&r), "");              /* the verdict's own text */
	T_EQ_INT(msg_done(&r), 0);
	pop_login(301, "ann", "annpw", 1);          /* malformed: dropped, nothing sent */
	pop_login(302, "ann", "annpw", 0);
	T_EQ_INT(recv_msg(parent_fd, &in, &type, &rid, &r), 0);
	T_EQ_INT(type, M_POP_SPAWN);
	T_EQ_INT(rid, 302);
	T_EQ_STR(msg_get_str(&r), "ann");
	T_EQ_INT(msg_get_u64(&r), 1002);
	T_EQ_INT(msg_get_u64(&r), 100);
	T_EQ_STR(msg_get_str(&r), "/home/ann");
	T_EQ_STR(msg_get_str(&r), "./Maildir/");
	T_EQ_INT(msg_done(&r), 0);
	/* the smtp channel got nothing for 301 or 302: the next answer is the next request's */
	T_EQ_INT(check(M_MAIL_CHECK, "someone@example.org", NULL, 303, text), V_OK);
	buf_free(&in);
}

static void test_route_msg(void)
{
	struct msg m;
	msg_init(&m, M_ROUTE, 77);
	msg_str(&m, "staff@example.com");
	msg_str(&m, "sender@x.example");
	send_msg(queue_fd, &m);
	struct buf in;
	buf_init(&in);
	uint32_t type = 0, id = 0;
	struct msg_reader r;
	T_EQ_INT(recv_msg(queue_fd, &in, &type, &id, &r), 0);
	T_EQ_INT(type, M_ROUTE_RESULT);
	T_EQ_INT(id, 77);
	T_EQ_INT(msg_get_u64(&r), V_OK);
	msg_get_str(&r);
	uint64_t n = msg_get_u64(&r);
	T_EQ_INT(n, 2);
	for (uint64_t i = 0; i < n && !r.err; i++) {
		const char *channel = msg_get_str(&r), *host = msg_get_str(&r);
		const char *address = msg_get_str(&r), *user = msg_get_str(&r);
		uint64_t uid = msg_get_u64(&r), gid = msg_get_u64(&r);
		const char *home = msg_get_str(&r), *local = msg_get_str(&r), *ext = msg_get_str(&r);
		const char *domain = msg_get_str(&r), *instr = msg_get_str(&r);
		T_EQ_STR(msg_get_str(&r), "");   /* profile: none for a file-table user */
		if (i == 0) {
			T_EQ_STR(channel, "local");
			T_EQ_STR(host, "");
			T_EQ_STR(address, "joe@example.com");
			T_EQ_STR(user, "joe");
			T_EQ_INT(uid, 1001);
			T_EQ_INT(gid, 100);
			T_EQ_STR(home, "/home/joe");
			T_EQ_STR(local, "joe");
			T_EQ_STR(ext, "");
			T_EQ_STR(domain, "example.com");
			T_EQ_STR(instr, "");
		} else {
			T_EQ_STR(channel, "smtp");
			T_EQ_STR(host, "remote.example");
			T_EQ_STR(address, "far@remote.example");
		}
	}
	T_EQ_INT(msg_done(&r), 0);

	msg_init(&m, M_ROUTE, 78);
	msg_str(&m, "nobody@example.com");
	msg_str(&m, "");
	send_msg(queue_fd, &m);
	T_EQ_INT(recv_msg(queue_fd, &in, &type, &id, &r), 0);
	T_EQ_INT(id, 78);
	T_EQ_INT(msg_get_u64(&r), V_NOUSER);
	T_CHECK(*msg_get_str(&r) != '\0');
	T_EQ_INT(msg_get_u64(&r), 0);
	T_EQ_INT(msg_done(&r), 0);
	buf_free(&in);
}

struct mxcase {
	const char *name;
	uint64_t mode;
	int status;
	const char *addrs;            /* "pref host addr;..." */
	long max_ms;
};

/* send all cases at once (the answers may come in any order), then match them by id */
static void test_mx(void)
{
	static const struct mxcase c[] = {
		{ "[192.0.2.7]", 1, MX_OK, "0 192.0.2.7 192.0.2.7;", 1000 },
		{ "[IPv6:2001:DB8::7]", 0, MX_OK, "0 2001:db8::7 2001:db8::7;", 1000 },
		{ "192.0.2.8", 0, MX_OK, "0 192.0.2.8 192.0.2.8;", 1000 },
		{ "bad..name", 0, MX_NODOMAIN, "", 1000 },
		{ "[not-an-address]", 1, MX_NODOMAIN, "", 1000 },
		{ "", 0, MX_NODOMAIN, "", 1000 },
		{ "example.test", 7, MX_TEMP, "", 1000 },
		{ "example.test", 0, MX_TEMP, "", TEST_DNS_TIMEOUT_MS + 3000 },
		{ "relay.example.test", 1, MX_TEMP, "", TEST_DNS_TIMEOUT_MS + 3000 },
	};
	enum { N = sizeof c / sizeof c[0] };
	long long start = ev_now_ms();
	for (size_t i = 0; i < N; i++) {
		struct msg m;
		msg_init(&m, M_MX_RESOLVE, (uint32_t)(500 + i));
		msg_str(&m, c[i].name);
		msg_u64(&m, c[i].mode);
		send_msg(mta_fd, &m);
	}
	struct buf in;
	buf_init(&in);
	for (size_t k = 0; k < N; k++) {
		uint32_t type = 0, id = 0;
		struct msg_reader r;
		if (recv_msg(mta_fd, &in, &type, &id, &r) < 0) {
			T_CHECK(!"M_MX_RESULT missing");
			break;
		}
		long long ms = ev_now_ms() - start;
		T_EQ_INT(type, M_MX_RESULT);
		T_CHECK(id >= 500 && id < 500 + N);
		const struct mxcase *mc = &c[id >= 500 && id < 500 + N ? id - 500 : 0];
		int status = (int)msg_get_u64(&r);
		const char *diag = msg_get_str(&r);
		uint64_t n = msg_get_u64(&r);
		struct buf got;
		buf_init(&got);
		buf_adds(&got, "");
		for (uint64_t i = 0; i < n && !r.err; i++) {
			uint64_t pref = msg_get_u64(&r);
			const char *host = msg_get_str(&r);
			buf_printf(&got, "%llu %s %s;", (unsigned long long)pref, host, msg_get_str(&r));
		}
		T_EQ_INT(msg_done(&r), 0);
		if (status != mc->status || strcmp(got.p, mc->addrs) || ms > mc->max_ms)
			fprintf(stderr, "mx case %u (%s mode %llu): status=%d diag=%s addrs=%s ms=%lld\n",
			        id - 500, mc->name, (unsigned long long)mc->mode, status, diag, got.p, ms);
		T_EQ_INT(status, mc->status);
		T_EQ_STR(got.p, mc->addrs);
		T_CHECK(*diag != '\0');
		T_CHECK(ms <= mc->max_ms);
		buf_free(&got);
	}
	buf_free(&in);
}

static void write_file(const char *name, const char *text, char *path, size_t plen)
{
	snprintf(path, plen, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	T_CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static pid_t start_role(void)
{
	char users[256], aliases[256], text[2048], utext[512], kim[256], dq[256];
	/* kim's home exists and holds .qmail-foo: kim-foo is deliverable, kim-bar is not */
	snprintf(kim, sizeof kim, "%s/kim", dir);
	T_EQ_INT(mkdir(kim, 0755), 0);
	write_file("kim/.qmail-foo", "./Maildir/\n", dq, sizeof dq);
	snprintf(utext, sizeof utext, "joe:1001:100:/home/joe\nann:1002:100:/home/ann:{PLAIN}annpw\n"
	         "kim:1003:100:%s\nslowuser:1004:100:/home/slowuser\n"
	         "slowb:1005:100:/home/slowb\n", kim);
	write_file("users", utext, users, sizeof users);
	/* postmaster has no alias of its own: the postmaster key (root) finds it */
	write_file("aliases", "staff: joe, far@remote.example\nroot: joe\n"
	           "slowlist: slowuser, joe, slowb\nearly: slowuser, tempnowx\n"
	           "late: slowuser, tempslowx\n", aliases, sizeof aliases);
	snprintf(text, sizeof text,
	         "me mail.example.com\nlocals example.com\nenvnoathost example.com\n"
	         "percenthack yes\n"
	         "rcpthosts relay.example .wild.example\n"
	         "relayclients 10.0.0.0/8 2001:db8::/32\n"
	         "badmailfrom spammer@example.com @evil.example\n"
	         "badrcptto blocked@example.com @nasty.example\n"
	         "users file:%s\naliases file:%s\nresolver 127.0.0.1:%d\n", users, aliases,
	         dead_port);
	static struct config cfg;
	struct cfg_errors errs;
	T_EQ_INT(config_parse(&cfg, "t.conf", text, strlen(text), &errs), 0);
	int sp[2], qp[2], mp[2], pp[2], cp[2];
	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, cp), 0);
	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, pp), 0);
	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, qp), 0);
	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, mp), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(sp[0]);
		close(qp[0]);
		close(mp[0]);
		close(pp[0]);
		close(cp[0]);
		dns_set_timeout(TEST_DNS_TIMEOUT_MS);
		lookup_test_fake_ms = 400;    /* well past the answers given at once */
		struct role_ctx ctx;
		memset(&ctx, 0, sizeof ctx);
		for (int i = 0; i < R_NROLES; i++)
			ctx.peer[i] = -1;
		ctx.self = R_LOOKUP;
		ctx.cfg = &cfg;
		ctx.peer[R_SMTP] = sp[1];
		ctx.peer[R_QUEUE] = qp[1];
		ctx.peer[R_MTA] = mp[1];
		ctx.peer[R_PARENT] = pp[1];
		ctx.peer[R_CONTROL] = cp[1];
		_exit(lookup_main(&ctx) == 0 ? 3 : 4);
	}
	close(sp[1]);
	close(qp[1]);
	close(mp[1]);
	close(pp[1]);
	close(cp[1]);
	control_fd = cp[0];
	parent_fd = pp[0];
	smtp_fd = sp[0];
	queue_fd = qp[0];
	mta_fd = mp[0];
	config_free(&cfg);
	return pid;
}

/* a loopback UDP port nobody listens on (bound, then given back) */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ_INT(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	T_EQ_INT(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* smtp restarts: its old channel closes, the parent hands over the new one (M_PEER_NEW,
 * the fd by SCM_RIGHTS), and checks are answered on it */
static void test_peer_new(void)
{
	int np[2];
	char text[256];
	close(smtp_fd);
	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, np), 0);
	struct msg m;
	msg_init(&m, M_PEER_NEW, 0);
	msg_u64(&m, R_SMTP);
	unsigned char *h = (unsigned char *)m.b.p;
	put32(h, (uint32_t)(m.b.len - MSG_HDRLEN));
	put32(h + 4, M_PEER_NEW | MSG_FDFLAG);
	put32(h + 8, 0);
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { m.b.p, m.b.len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
	                     .msg_controllen = sizeof cbuf };
	memset(cbuf, 0, sizeof cbuf);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &np[1], sizeof(int));
	T_EQ_INT(sendmsg(parent_fd, &mh, 0), (long long)m.b.len);
	msg_discard(&m);
	close(np[1]);
	smtp_fd = np[0];
	T_EQ_INT(check(M_MAIL_CHECK, "someone@example.org", NULL, 77, text), V_OK);
}

static void send_check(int fd, uint32_t type, const char *a, const char *b, uint32_t id)
{
	struct msg m;
	msg_init(&m, type, id);
	msg_str(&m, a);
	if (b)
		msg_str(&m, b);
	send_msg(fd, &m);
}

/* the next M_CHECK_RESULT on smtp_fd: its id and verdict */
static int next_check(uint32_t *id)
{
	struct buf in;
	buf_init(&in);
	uint32_t type = 0;
	struct msg_reader r;
	int v = -1;
	if (recv_msg(smtp_fd, &in, &type, id, &r) == 0 && type == M_CHECK_RESULT) {
		v = (int)msg_get_u64(&r);
		msg_get_str(&r);
		T_EQ_INT(msg_done(&r), 0);
	}
	buf_free(&in);
	return v;
}

/* M_ROUTE on queue_fd -> verdict, number of targets and the address of each (joined by ,) */
static int route_addrs(const char *rcpt, uint32_t id, uint64_t *n, char *addrs, size_t alen)
{
	send_check(queue_fd, M_ROUTE, rcpt, "", id);
	struct buf in;
	buf_init(&in);
	uint32_t type = 0, rid = 0;
	struct msg_reader r;
	int v = -1;
	addrs[0] = '\0';
	if (recv_msg(queue_fd, &in, &type, &rid, &r) == 0) {
		T_EQ_INT(type, M_ROUTE_RESULT);
		T_EQ_INT(rid, id);
		v = (int)msg_get_u64(&r);
		msg_get_str(&r);
		*n = msg_get_u64(&r);
		for (uint64_t i = 0; i < *n && !r.err; i++) {
			msg_get_str(&r);
			msg_get_str(&r);
			const char *a = msg_get_str(&r);
			size_t l = strlen(addrs);
			snprintf(addrs + l, alen - l, "%s%s", l ? "," : "", a);
			for (int k = 0; k < 9; k++)   /* user … instruction, profile */
				k == 1 || k == 2 ? (void)msg_get_u64(&r) : (void)msg_get_str(&r);
		}
		T_EQ_INT(msg_done(&r), 0);
	}
	buf_free(&in);
	return v;
}

/* A RCPT check that must wait for the backend parks; the checks sent after it are answered
 * first, each with its own id, then the parked one with its id and the right verdict. */
static void test_async_order(void)
{
	uint32_t id = 0;
	send_check(smtp_fd, M_RCPT_CHECK, "192.0.2.1", "slowuser@example.com", 900);
	send_check(smtp_fd, M_RCPT_CHECK, "192.0.2.1", "tempslowx@example.com", 901);
	send_check(smtp_fd, M_RCPT_CHECK, "192.0.2.1", "slowghost@example.com", 902);
	send_check(smtp_fd, M_RCPT_CHECK, "192.0.2.1", "joe@example.com", 903);
	send_check(smtp_fd, M_MAIL_CHECK, "spammer@example.com", NULL, 904);
	send_check(smtp_fd, M_RCPT_CHECK, "192.0.2.1", "tempnowx@example.com", 905);
	T_EQ_INT(next_check(&id), V_OK);           /* joe: at once, before the parked ones */
	T_EQ_INT(id, 903);
	T_EQ_INT(next_check(&id), V_BAD);
	T_EQ_INT(id, 904);
	T_EQ_INT(next_check(&id), V_TEMP);         /* tempfailed at once by the backend */
	T_EQ_INT(id, 905);
	int seen = 0;
	for (int i = 0; i < 3; i++) {              /* then the parked three, in any order */
		int v = next_check(&id);
		if (id == 900 && v == V_OK)
			seen |= 1;
		else if (id == 901 && v == V_TEMP)
			seen |= 2;
		else if (id == 902 && v == V_NOUSER)
			seen |= 4;
		else
			fprintf(stderr, "unexpected answer id=%u v=%d\n", id, v);
	}
	T_EQ_INT(seen, 7);
}

/* M_ROUTE through an alias whose targets wait: two questions out at once, one answer with
 * all the targets; a tempfail known before the backend answers replies at once (the session
 * lives until its answer comes, then goes), and one that comes later tempfails too. */
static void test_async_route(void)
{
	uint64_t n = 0;
	char addrs[512];
	T_EQ_INT(route_addrs("slowlist@example.com", 950, &n, addrs, sizeof addrs), V_OK);
	T_EQ_INT(n, 3);
	T_EQ_STR(addrs, "slowuser@example.com,joe@example.com,slowb@example.com");
	T_EQ_INT(route_addrs("early@example.com", 951, &n, addrs, sizeof addrs), V_TEMP);
	T_EQ_INT(n, 0);
	T_EQ_INT(route_addrs("late@example.com", 952, &n, addrs, sizeof addrs), V_TEMP);
	T_EQ_INT(route_addrs("slowb@example.com", 953, &n, addrs, sizeof addrs), V_OK);
	T_EQ_STR(addrs, "slowb@example.com");
}

/* M_EXPLAIN (ternctl verify / ldaplookup) -> verdict, directory status and the text */
static void explain_send(const char *addr, uint64_t flags, uint32_t id)
{
	struct msg m;
	msg_init(&m, M_EXPLAIN, id);
	msg_str(&m, addr);
	msg_u64(&m, flags);
	send_msg(control_fd, &m);
}

static uint64_t explain_pw;      /* the last answer's password field */

/* with EXPLAIN_PASSWORD: the password as the last field */
static void explain_send_pw(const char *arg, uint64_t flags, const char *pw, uint32_t id)
{
	struct msg m;
	msg_init(&m, M_EXPLAIN, id);
	msg_str(&m, arg);
	msg_u64(&m, flags);
	msg_wipe(&m);
	msg_str(&m, pw);
	send_msg(control_fd, &m);
}

static int explain_next(uint32_t *id, uint64_t *dirst, char *text, size_t tlen)
{
	struct buf in;
	buf_init(&in);
	uint32_t type = 0;
	struct msg_reader r;
	T_EQ_INT(recv_msg(control_fd, &in, &type, id, &r), 0);
	T_EQ_INT(type, M_EXPLAIN_RESULT);
	int v = (int)msg_get_u64(&r);
	*dirst = msg_get_u64(&r);
	snprintf(text, tlen, "%s", msg_get_str(&r));
	explain_pw = msg_get_u64(&r);
	T_EQ_INT(msg_done(&r), 0);
	buf_free(&in);
	return v;
}

/* The same walk as RCPT: an address whose user is slow parks while the next one is answered;
 * each answer carries its request's id; badrcptto first; no directory configured is said. */
static void test_explain(void)
{
	uint32_t id = 0;
	uint64_t d = 9;
	char text[2048];
	explain_send("slowuser@example.com", 0, 960);
	explain_send("staff@example.com", EXPLAIN_DIRECTORY, 961);
	explain_send("blocked@example.com", 0, 962);
	explain_send("ghost@example.com", 0, 963);
	T_EQ_INT(explain_next(&id, &d, text, sizeof text), V_OK);
	T_EQ_INT(id, 961);
	T_EQ_INT(d, EXPLAIN_DIR_NONE);
	T_EQ_STR(text, "directory: no directory configured (ldapserver is not set)\n"
	         "staff@example.com: deliverable\n"
	         "  target 1: channel=local host=\"\" address=joe@example.com user=joe uid=1001 "
	         "gid=100 home=/home/joe instruction=(default delivery)\n"
	         "  target 2: channel=smtp host=remote.example address=far@remote.example\n");
	T_EQ_INT(explain_next(&id, &d, text, sizeof text), V_BAD);
	T_EQ_INT(id, 962);
	T_EQ_STR(text, "blocked@example.com: refused (550 5.7.1 badrcptto)\n");
	T_EQ_INT(explain_next(&id, &d, text, sizeof text), V_NOUSER);
	T_EQ_INT(id, 963);
	T_EQ_INT(d, EXPLAIN_DIR_NOTASKED);
	T_CHECK(strncmp(text, "ghost@example.com: unknown (550 5.1.1 ", 38) == 0);
	T_EQ_INT(explain_next(&id, &d, text, sizeof text), V_OK);   /* the parked one, last */
	T_EQ_INT(id, 960);
	T_CHECK(strstr(text, "user=slowuser uid=1004") != NULL);
	T_EQ_INT(explain_pw, EXPLAIN_PW_NOTASKED);

	/* -u and -p without a directory: said, no route for a uid, the password not checked */
	explain_send("joe", EXPLAIN_UID, 964);
	T_EQ_INT(explain_next(&id, &d, text, sizeof text), V_NOUSER);
	T_EQ_INT(id, 964);
	T_EQ_INT(d, EXPLAIN_DIR_NONE);
	T_EQ_STR(text, "directory: no directory configured (ldapserver is not set)\n"
	         "uid joe: not looked up (no directory)\n");
	explain_send_pw("staff@example.com", EXPLAIN_PASSWORD, "s3cret", 965);
	T_EQ_INT(explain_next(&id, &d, text, sizeof text), V_OK);
	T_EQ_INT(id, 965);
	T_EQ_INT(explain_pw, EXPLAIN_PW_NONE);
	const char *want = "directory: no directory configured (ldapserver is not set)\n"
	                   "password: not checked (no directory)\nstaff@example.com: deliverable\n";
	T_CHECK(strncmp(text, want, strlen(want)) == 0);
	T_CHECK(strstr(text, "s3cret") == NULL);
	/* EXPLAIN_PASSWORD without the field: an empty password, still never checked here */
	explain_send("staff@example.com", EXPLAIN_PASSWORD, 966);
	T_EQ_INT(explain_next(&id, &d, text, sizeof text), V_OK);
	T_EQ_INT(explain_pw, EXPLAIN_PW_NONE);
}

/* a directory user's POP3 mailbox and ids before the parent is asked; accountStatus words */
static void test_pop_dircheck(void)
{
	static struct auth_res r;
	static struct config c;
	/* the entry's ids, home and store were checked by lookup_ldap_map (test_lookup_authdir):
	 * POP3's own is a mailbox to serve */
	memset(&r, 0, sizeof r);
	r.directory = 1;
	r.user.uid = r.user.gid = 2001;
	snprintf(r.user.home, sizeof r.user.home, "/var/mail/dj");
	snprintf(r.maildir, sizeof r.maildir, "/var/mail/dj/Maildir/");
	T_CHECK(lookup_pop_dircheck(&c, &r) == NULL);
	r.maildir[0] = '\0';
	T_CHECK(lookup_pop_dircheck(&c, &r) != NULL);
	/* homed on another cluster node: refused for good, the node named */
	char text[256];
	snprintf(r.maildir, sizeof r.maildir, "/var/mail/dj/Maildir/");
	snprintf(r.user.mailhost, sizeof r.user.mailhost, "node2.example.test");
	T_EQ_INT(lookup_pop_elsewhere(&c, &r, text, sizeof text), 0);    /* ldapcluster no */
	c.ldapcluster = 1;
	c.me = "node1.example.test";
	T_EQ_INT(lookup_pop_elsewhere(&c, &r, text, sizeof text), 1);
	T_CHECK(strstr(text, "[SYS/PERM]") == text && strstr(text, "node2.example.test"));
	snprintf(r.user.mailhost, sizeof r.user.mailhost, "NODE1.example.test");
	T_EQ_INT(lookup_pop_elsewhere(&c, &r, text, sizeof text), 0);    /* me */
	snprintf(r.user.mailhost, sizeof r.user.mailhost, "evil\r\n+OK");
	T_EQ_INT(lookup_pop_elsewhere(&c, &r, text, sizeof text), 1);
	T_CHECK(strchr(text, '\r') == NULL && strchr(text, '\n') == NULL);
	r.user.mailhost[0] = '\0';
	T_EQ_INT(lookup_pop_elsewhere(&c, &r, text, sizeof text), 0);
	T_EQ_INT(lookup_authdir_account(""), USERS_ACTIVE);
	T_EQ_INT(lookup_authdir_account("active"), USERS_ACTIVE);
	T_EQ_INT(lookup_authdir_account("NoAccess"), USERS_NOACCESS);
	T_EQ_INT(lookup_authdir_account("disabled"), USERS_DISABLED);
	T_EQ_INT(lookup_authdir_account("deleted"), USERS_DELETED);
	T_EQ_INT(lookup_authdir_account("NoPop"), USERS_NOACCESS);
	T_EQ_INT(lookup_authdir_account("bogus"), USERS_DISABLED);  /* unknown: no login */
}

static void run(void)
{
	test_pop_dircheck();
	dead_port = closed_port();
	snprintf(dir, sizeof dir, "/tmp/tern-lookup-XXXXXX");
	T_CHECK(mkdtemp(dir) != NULL);
	log_init("test_lookup", getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	pid_t pid = start_role();
	struct timeval tv = { 10, 0 };             /* a request left unanswered fails, not hangs */
	setsockopt(smtp_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(parent_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(control_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	test_checks();
	test_auth_relay();
	test_pop_login();
	test_route_msg();
	test_mx();
	test_async_order();
	test_async_route();
	test_explain();
	test_peer_new();
	close(parent_fd);
	int st = -1;
	T_EQ_INT(waitpid(pid, &st, 0), pid);
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);   /* the parent gone: exit(0) */
	close(smtp_fd);
	close(queue_fd);
	close(mta_fd);
	close(control_fd);
	char p[256];
	snprintf(p, sizeof p, "%s/users", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/aliases", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/kim/.qmail-foo", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/kim", dir);
	rmdir(p);
	rmdir(dir);
}

T_MAIN(run)
