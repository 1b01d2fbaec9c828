/* test_io — the connection layer over socketpairs and loopback: lines split across reads,
 * paused reading, output and IO_LOWAT, the inactivity timeout, a refused connect, and TLS:
 * a handshake, verification with and without the right name, and the STARTTLS command
 * injection (plaintext pipelined behind STARTTLS is discarded on both sides).
 * The certificate is made here, in memory, and written to a temporary file. */
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/io.h"
#include "lib/tls.h"
#include "t.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

struct side {
	struct io *io;
	struct buf lines;          /* every line read, each followed by '|' */
	int evts[16];
	int tlsready, dataevents, quit_after_flush;
	long dropped;
	struct tls_ctx *starttls;  /* server: on "STARTTLS", answer 220 and start TLS */
	struct tls_ctx *client;    /* client: on "220", start TLS with name */
	const char *name;
	const char *after_tls;     /* written when the handshake is done */
	int pause_after;           /* stop reading after this many lines (0: never) */
	int nlines;
};

static struct ev *t_deadline;
static void t_stop(int fd, short what, void *arg) { ev_exit(); }

static void t_loop(long ms)
{
	ev_add(t_deadline, ms);
	ev_run();
	ev_del(t_deadline);
}

static void side_cb(struct io *io, int evt, void *arg)
{
	struct side *s = arg;
	char *l;
	size_t n;
	s->evts[evt]++;
	switch (evt) {
	case IO_DATAIN:
		s->dataevents++;
		while ((!s->pause_after || s->nlines < s->pause_after) && (l = io_getline(io, &n))) {
			buf_add(&s->lines, l, n);
			buf_addc(&s->lines, '|');
			s->nlines++;
			if (s->starttls && strcmp(l, "STARTTLS") == 0) {
				io_print(io, "220 go ahead\r\n");
				s->dropped = io_start_tls_server(io, s->starttls);
				return;
			}
			if (s->client && strncmp(l, "220", 3) == 0) {
				s->dropped = io_start_tls_client(io, s->client, s->name);
				return;
			}
			if (strcmp(l, "QUIT") == 0) {
				io_print(io, "221 bye\r\n");
				s->quit_after_flush = 1;
			}
		}
		if (s->pause_after && s->nlines >= s->pause_after)
			io_set_read(io, 0);
		break;
	case IO_TLSREADY:
		s->tlsready++;
		if (s->after_tls)
			io_print(io, s->after_tls);
		break;
	case IO_LOWAT:
		if (s->quit_after_flush) {
			io_free(io);
			s->io = NULL;
		}
		break;
	case IO_TIMEOUT:
	case IO_ERROR:
	case IO_DISCONNECTED:
		ev_exit();
		break;
	}
	if (s->lines.len && strstr(s->lines.p, "END|"))
		ev_exit();
}

static void pair(struct side *a, struct side *b)
{
	int sv[2];
	memset(a, 0, sizeof *a);
	memset(b, 0, sizeof *b);
	buf_init(&a->lines);
	buf_init(&b->lines);
	T_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	a->io = io_new(sv[0], side_cb, a);
	b->io = io_new(sv[1], side_cb, b);
}

static void unpair(struct side *a, struct side *b)
{
	if (a->io)
		io_free(a->io);
	if (b->io)
		io_free(b->io);
	buf_free(&a->lines);
	buf_free(&b->lines);
}

static void test_lines(void)
{
	struct side a, b;
	pair(&a, &b);
	io_print(a.io, "HELO x\r\nMA");
	T_CHECK(io_flush(a.io) == 0);
	t_loop(200);                        /* b reads "HELO x", keeps "MA" */
	T_EQ_STR(b.lines.p, "HELO x|");
	T_EQ_INT(io_datalen(b.io), 2);
	io_print(a.io, "IL FROM:<>\nbare\rcr\r\nEND\r\n");
	t_loop(2000);
	T_EQ_STR(b.lines.p, "HELO x|MAIL FROM:<>|bare\rcr|END|");
	T_EQ_INT(io_datalen(b.io), 0);
	T_CHECK(io_footprint(b.io) < 1024);   /* idle: no buffers held */
	unpair(&a, &b);
}

static void test_pause(void)
{
	struct side a, b;
	pair(&a, &b);
	b.pause_after = 1;
	io_print(a.io, "one\r\ntwo\r\nthree\r\n");
	t_loop(200);
	T_EQ_STR(b.lines.p, "one|");
	T_EQ_INT(io_datalen(b.io), 12);      /* kept for later, copied out of the shared buffer */
	b.pause_after = 0;
	io_print(a.io, "END\r\n");
	io_set_read(b.io, 1);                /* buffered input comes back as IO_DATAIN */
	t_loop(2000);
	T_EQ_STR(b.lines.p, "one|two|three|END|");
	unpair(&a, &b);
}

static void test_quit_lowat(void)
{
	struct side a, b;
	pair(&a, &b);
	io_print(a.io, "QUIT\r\n");
	t_loop(2000);                        /* b answers, frees itself on IO_LOWAT; a sees EOF */
	T_CHECK(b.io == NULL);
	T_EQ_STR(a.lines.p, "221 bye|");
	T_EQ_INT(a.evts[IO_DISCONNECTED], 1);
	unpair(&a, &b);
}

/* an owner that refills its output on every IO_LOWAT, more often than one frame loops */
static int refills;
static void refill_cb(struct io *io, int evt, void *arg)
{
	if (evt == IO_LOWAT && refills < 300) {
		refills++;
		io_print(io, refills == 300 ? "END\r\n" : "x\r\n");
		io_flush(io);                    /* drained at once: the next IO_LOWAT is due */
	}
}

static void test_lowat_refill(void)
{
	struct side a, b;
	pair(&a, &b);
	io_set_cb(a.io, refill_cb, NULL);
	io_print(a.io, "x\r\n");
	t_loop(5000);                        /* b exits the loop on END */
	T_EQ_INT(refills, 300);
	T_CHECK(strstr(b.lines.p, "END|") != NULL);
	unpair(&a, &b);
}

static void test_timeout(void)
{
	struct side a, b;
	pair(&a, &b);
	io_set_timeout(b.io, 30);
	long long t0 = ev_now_ms();
	t_loop(5000);
	T_EQ_INT(b.evts[IO_TIMEOUT], 1);
	T_CHECK(ev_now_ms() - t0 < 4000);
	T_EQ_STR(io_error(b.io), "timeout");
	io_set_read(b.io, 0);                /* paused with nothing to send: no timeout */
	t_loop(100);
	T_EQ_INT(b.evts[IO_TIMEOUT], 1);
	unpair(&a, &b);
}

/* an owner that re-asserts the same timeout every 20 ms must still time out after 100 ms */
static struct io *reassert_io;
static struct ev *reassert_ev;
static int reasserts;
static void t_reassert(int fd, short what, void *arg)
{
	io_set_timeout(reassert_io, 100);
	if (++reasserts < 200)                /* 4 s at most: the loop's deadline ends first */
		ev_add(reassert_ev, 20);
}

static void test_timeout_same_value(void)
{
	struct side a, b;
	pair(&a, &b);
	reassert_io = b.io;
	io_set_timeout(b.io, 100);
	reassert_ev = ev_new(-1, 0, t_reassert, NULL);
	ev_add(reassert_ev, 20);
	t_loop(3000);                         /* side_cb ends the loop on IO_TIMEOUT */
	T_EQ_INT(b.evts[IO_TIMEOUT], 1);
	T_CHECK(reasserts < 100);
	ev_free(reassert_ev);
	unpair(&a, &b);
}

static void test_connect_refused(void)
{
	struct side a;
	memset(&a, 0, sizeof a);
	buf_init(&a.lines);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sin;
	T_CHECK(bind(l, (struct sockaddr *)&sin, sizeof sin) == 0);
	T_CHECK(getsockname(l, (struct sockaddr *)&sin, &sl) == 0);
	close(l);                            /* the port is now closed */
	a.io = io_connect((struct sockaddr *)&sin, sizeof sin, NULL, 0, side_cb, &a);
	T_CHECK(a.io != NULL);
	t_loop(3000);
	T_EQ_INT(a.evts[IO_ERROR], 1);
	T_CHECK(strstr(io_error(a.io), "connect:") != NULL);
	io_free(a.io);
	buf_free(&a.lines);
}

/* io turns Nagle's algorithm off on the TCP connections it owns */
static void test_nodelay(void)
{
	struct side a;
	memset(&a, 0, sizeof a);
	buf_init(&a.lines);
	int l = socket(AF_INET, SOCK_STREAM, 0), v = 0;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sin, vl = sizeof v;
	T_CHECK(bind(l, (struct sockaddr *)&sin, sizeof sin) == 0 && listen(l, 1) == 0);
	T_CHECK(getsockname(l, (struct sockaddr *)&sin, &sl) == 0);
	a.io = io_connect((struct sockaddr *)&sin, sizeof sin, NULL, 0, side_cb, &a);
	int fd = accept(l, NULL, NULL);
	struct io *srv = io_new(fd, side_cb, &a);
	T_CHECK(getsockopt(io_fd(a.io), IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v == 1);
	v = 0;
	T_CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v == 1);
	io_free(srv);
	io_free(a.io);
	close(l);
	buf_free(&a.lines);
}

/* ---- TLS ------------------------------------------------------------------------------- */

static char t_pem[64] = "/tmp/tern-test-io-XXXXXX";

static void make_cert(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"mx.test", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, k);
	X509V3_CTX v;
	X509V3_set_ctx(&v, x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, NID_subject_alt_name, "DNS:mx.test");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &v, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	X509_sign(x, k, EVP_sha256());
	int fd = mkstemp(t_pem);
	FILE *f = fdopen(fd, "w");
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void test_tls(const char *name, int want_verified)
{
	char err[256];
	struct tls_conf sc = { .certfile = t_pem }, cc = { .cafile = t_pem };
	struct tls_ctx *srv = tls_server_new(&sc, err, sizeof err);
	struct tls_ctx *cli = tls_client_new(&cc, err, sizeof err);
	T_CHECK(srv && cli);
	if (!srv || !cli)
		return;
	struct side a, b;                    /* a: client, b: server */
	pair(&a, &b);
	b.starttls = srv;
	a.client = cli;
	a.name = name;
	a.after_tls = "AFTER\r\nEND\r\n";
	b.after_tls = "250 ready again\r\n";
	/* the injection: a command pipelined behind STARTTLS, in the same segment */
	io_print(a.io, "EHLO x\r\nSTARTTLS\r\nRCPT TO:<injected>\r\n");
	/* and a server that answers 220 with something glued behind it */
	t_loop(5000);
	T_EQ_INT(b.tlsready, 1);
	T_EQ_INT(a.tlsready, 1);
	T_EQ_INT(b.dropped, 20);             /* "RCPT TO:<injected>\r\n" never read as a command */
	T_EQ_STR(b.lines.p, "EHLO x|STARTTLS|AFTER|END|");
	T_CHECK(io_tls(a.io) && io_tls(b.io));
	struct io_tls_info ia, ib;
	io_tls_info(a.io, &ia);
	io_tls_info(b.io, &ib);
	T_EQ_STR(ia.version, "TLSv1.3");
	T_CHECK(ia.bits >= 128);
	T_EQ_INT(ia.peer_cert, 1);
	T_EQ_INT(ia.verified, want_verified);
	T_EQ_STR(ia.peer_cn, "mx.test");
	if (!want_verified)
		T_CHECK(ia.verify_error && strstr(ia.verify_error, "mismatch") != NULL);
	T_EQ_INT(ib.peer_cert, 0);
	unpair(&a, &b);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

/* the response injection: plaintext glued behind the server's 220 is dropped by the client */
static void test_tls_client_drop(void)
{
	char err[256];
	struct tls_conf sc = { .certfile = t_pem }, cc = { .cafile = t_pem };
	struct tls_ctx *srv = tls_server_new(&sc, err, sizeof err);
	struct tls_ctx *cli = tls_client_new(&cc, err, sizeof err);
	struct side a, b;
	pair(&a, &b);
	a.client = cli;
	a.name = "mx.test";
	io_print(b.io, "220 go\r\n250 injected\r\n");
	T_CHECK(io_flush(b.io) == 0);
	T_CHECK(io_start_tls_server(b.io, srv) == 0);
	b.after_tls = "END\r\n";
	t_loop(5000);
	T_EQ_INT(a.dropped, 14);
	T_EQ_STR(a.lines.p, "220 go|END|");
	unpair(&a, &b);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void test_tls_conf(void)
{
	char err[256];
	int lo, hi;
	time_t exp = 0;
	T_CHECK(tls_protocols_parse(NULL, &lo, &hi) == 0 && lo == TLS1_2_VERSION && hi == TLS1_3_VERSION);
	T_CHECK(tls_protocols_parse("TLSv1.3", &lo, &hi) == 0 && lo == TLS1_3_VERSION);
	T_CHECK(tls_protocols_parse("tlsv1.2, TLSv1.3", &lo, &hi) == 0 && lo == TLS1_2_VERSION);
	T_CHECK(tls_protocols_parse("SSLv3", &lo, &hi) < 0);
	T_CHECK(tls_protocols_parse("", &lo, &hi) < 0);
	T_CHECK(tls_cert_check(t_pem, &exp, err, sizeof err) == 0 && exp > time(NULL));
	T_CHECK(tls_cert_check("/nonexistent/tern.pem", &exp, err, sizeof err) < 0);
	T_CHECK(strstr(err, "/nonexistent/tern.pem") != NULL);
	struct tls_conf bad = { .certfile = t_pem, .ciphers = "NOSUCHCIPHER" };
	T_CHECK(tls_server_new(&bad, err, sizeof err) == NULL);
}

static void run(void)
{
	ev_init();
	t_deadline = ev_new(-1, 0, t_stop, NULL);
	T_CHECK(tls_init() == 0);
	test_lines();
	test_pause();
	test_quit_lowat();
	test_lowat_refill();
	test_timeout();
	test_timeout_same_value();
	test_connect_refused();
	test_nodelay();
	make_cert();
	test_tls_conf();
	test_tls("mx.test", 1);
	test_tls("other.test", 0);
	test_tls_client_drop();
	unlink(t_pem);
	ev_free(t_deadline);
}
T_MAIN(run)
