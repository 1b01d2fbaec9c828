/* tls_source — the bench's SMTP load generator over STARTTLS (smtp-source cannot do TLS).
 * C sessions run in parallel (one process each); together they send M messages of L octets,
 * R messages per connection: connect, EHLO, STARTTLS, handshake, EHLO, then R times
 * MAIL/RCPT/DATA, then QUIT. With R = 1 every message pays a full handshake.
 * Owns: its sockets. Trusts: nothing the server says beyond reply codes; the server is on
 * loopback (certificates are not verified: the bench measures cost, not trust).
 *
 *   tls_source [-P] -s C -m M -l L -r R -f FROM -t RCPT HOST:PORT
 * -P: plaintext, no STARTTLS (the same client as a baseline).
 * Exit 0 when every message got its 250 after DATA, 1 otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct conn {
	int fd;
	SSL *ssl;
	char buf[8192];
	size_t len;
};

static int src_read(struct conn *c, char *p, size_t n)
{
	if (c->ssl)
		return SSL_read(c->ssl, p, (int)n);
	ssize_t k;
	do
		k = read(c->fd, p, n);
	while (k < 0 && errno == EINTR);
	return (int)k;
}

static int src_write(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		int k = c->ssl ? SSL_write(c->ssl, p, (int)n) : (int)write(c->fd, p, n);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* the code of the next complete reply (multi-line replies read through) or -1 */
static int src_reply(struct conn *c)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		while (nl) {
			size_t l = (size_t)(nl - c->buf) + 1;
			int last = l >= 4 && c->buf[3] == ' ';
			int code = atoi(c->buf);
			memmove(c->buf, c->buf + l, c->len - l);
			c->len -= l;
			if (last)
				return code;
			nl = memchr(c->buf, '\n', c->len);
		}
		if (c->len == sizeof c->buf)
			return -1;
		int k = src_read(c, c->buf + c->len, sizeof c->buf - c->len);
		if (k <= 0)
			return -1;
		c->len += (size_t)k;
	}
}

static int src_cmd(struct conn *c, const char *line, int want)
{
	if (src_write(c, line, strlen(line)) < 0)
		return -1;
	return src_reply(c) == want ? 0 : -1;
}

static int src_plain;

static int src_session(SSL_CTX *ctx, const struct sockaddr_in *sa, int r, const char *from,
                       const char *rcpt, const char *body, size_t blen)
{
	struct conn c = { .fd = socket(AF_INET, SOCK_STREAM, 0) };
	char line[600];
	int one = 1, ok = -1;
	if (c.fd < 0 || connect(c.fd, (const struct sockaddr *)sa, sizeof *sa) < 0)
		goto out;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (src_reply(&c) != 220 || src_cmd(&c, "EHLO client.test\r\n", 250) < 0)
		goto out;
	if (!src_plain) {
		if (src_cmd(&c, "STARTTLS\r\n", 220) < 0)
			goto out;
		c.ssl = SSL_new(ctx);
		SSL_set_fd(c.ssl, c.fd);
		if (SSL_connect(c.ssl) != 1 || src_cmd(&c, "EHLO client.test\r\n", 250) < 0)
			goto out;
	}
	for (int i = 0; i < r; i++) {
		snprintf(line, sizeof line, "MAIL FROM:<%s>\r\n", from);
		if (src_cmd(&c, line, 250) < 0)
			goto out;
		snprintf(line, sizeof line, "RCPT TO:<%s>\r\n", rcpt);
		if (src_cmd(&c, line, 250) < 0 || src_cmd(&c, "DATA\r\n", 354) < 0)
			goto out;
		if (src_write(&c, body, blen) < 0 || src_reply(&c) != 250)
			goto out;
	}
	(void)src_cmd(&c, "QUIT\r\n", 221);
	ok = 0;
out:
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	if (c.fd >= 0)
		close(c.fd);
	return ok;
}

static char *src_body(size_t size, size_t *len)
{
	char *b = malloc(size + 256);
	size_t n = (size_t)snprintf(b, 256, "From: bench <sender@client.test>\r\nSubject: tls bench\r\n\r\n");
	while (n < size) {
		size_t k = size - n < 72 ? size - n : 72;
		memset(b + n, 'x', k);
		n += k;
		memcpy(b + n, "\r\n", 2);
		n += 2;
	}
	memcpy(b + n, ".\r\n", 3);
	*len = n + 3;
	return b;
}

int main(int argc, char **argv)
{
	int conc = 10, m = 100, r = 1, opt;
	size_t size = 4096;
	const char *from = "sender@client.test", *rcpt = "bench@bench.test";
	while ((opt = getopt(argc, argv, "Ps:m:l:r:f:t:")) != -1) {
		switch (opt) {
		case 'P': src_plain = 1; break;
		case 's': conc = atoi(optarg); break;
		case 'm': m = atoi(optarg); break;
		case 'l': size = (size_t)atol(optarg); break;
		case 'r': r = atoi(optarg); break;
		case 'f': from = optarg; break;
		case 't': rcpt = optarg; break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || conc < 1 || m < 1 || r < 1) {
		fprintf(stderr, "usage: tls_source [-P] -s C -m M -l L -r R -f FROM -t RCPT HOST:PORT\n");
		return 2;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char host[64];
	const char *colon = strrchr(argv[optind], ':');
	if (!colon || (size_t)(colon - argv[optind]) >= sizeof host)
		return 2;
	memcpy(host, argv[optind], (size_t)(colon - argv[optind]));
	host[colon - argv[optind]] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return 2;
	size_t blen;
	char *body = src_body(size, &blen);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	for (int i = 0; i < conc; i++) {
		int share = m / conc + (i < m % conc);
		if (fork() == 0) {
			int fails = 0;
			while (share > 0) {
				int k = share < r ? share : r;
				if (src_session(ctx, &sa, k, from, rcpt, body, blen) < 0)
					fails++;
				share -= k;
				if (fails > 3)
					_exit(1);
			}
			_exit(fails ? 1 : 0);
		}
	}
	int st, bad = 0;
	while (wait(&st) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad = 1;
	if (bad)
		fprintf(stderr, "tls_source: some sessions failed\n");
	return bad;
}
