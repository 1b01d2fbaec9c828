/* rcpt_source — the bench's recipient-check load generator: how many RCPT commands a server
 * answers per second when each one needs a user lookup (bench/run ldap). S sessions run in
 * parallel (one process each); together they send N RCPT commands: connect, EHLO, then
 * transactions of MAIL FROM, R RCPT TO and RSET, one command at a time (no pipelining: every
 * RCPT waits for its lookup), then QUIT after T transactions and connect again. Recipient i is u<k>@DOMAIN with k = 1 + (i mod U),
 * the sessions interleaved, so that U distinct users are asked in turn.
 * Owns: its sockets. Trusts: nothing the server says beyond reply codes.
 *
 *   rcpt_source -s S -n N -r R -t T -u U -f FROM -d DOMAIN HOST:PORT
 * Exit 0 when every RCPT got 250, 1 otherwise (the first refusals are printed). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct conn {
	int fd;
	char buf[8192];
	size_t len;
};

/* read one reply (all its lines); returns the code of the last line, -1 on EOF/error */
static int rs_reply(struct conn *c)
{
	for (;;) {
		char *nl;
		while ((nl = memchr(c->buf, '\n', c->len))) {
			size_t n = (size_t)(nl - c->buf) + 1;
			int last = n >= 4 && c->buf[3] != '-';
			int code = atoi(c->buf);
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			if (last)
				return code;
		}
		if (c->len == sizeof c->buf)
			return -1;
		ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
	}
}

static int rs_cmd(struct conn *c, const char *line)
{
	size_t n = strlen(line), off = 0;
	while (off < n) {
		ssize_t w = write(c->fd, line + off, n - off);
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return rs_reply(c);
}

static int rs_connect(struct conn *c, const struct sockaddr_in *sa)
{
	int one = 1;
	c->len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0 || connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
		perror("rcpt_source: connect");
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (rs_reply(c) != 220 || rs_cmd(c, "EHLO bench.client\r\n") != 250) {
		fprintf(stderr, "rcpt_source: no greeting or EHLO refused\n");
		return -1;
	}
	return 0;
}

static int rs_session(const struct sockaddr_in *sa, long first, long count, long stride,
                      long r, long t, long u, const char *from, const char *domain)
{
	struct conn c;
	int bad = 0;
	char line[512];
	if (rs_connect(&c, sa) < 0)
		return 1;
	for (long done = 0, txn = 0; done < count; txn++) {
		if (txn == t) {
			rs_cmd(&c, "QUIT\r\n");
			close(c.fd);
			if (rs_connect(&c, sa) < 0)
				return 1;
			txn = 0;
		}
		snprintf(line, sizeof line, "MAIL FROM:<%s>\r\n", from);
		if (rs_cmd(&c, line) != 250) {
			fprintf(stderr, "rcpt_source: MAIL refused\n");
			return 1;
		}
		for (long k = 0; k < r && done < count; k++, done++) {
			long i = first + done * stride;
			snprintf(line, sizeof line, "RCPT TO:<u%ld@%s>\r\n", 1 + i % u, domain);
			int code = rs_cmd(&c, line);
			if (code < 0)
				return 1;
			if (code != 250 && bad++ < 3)
				fprintf(stderr, "rcpt_source: %d for u%ld@%s\n", code, 1 + i % u, domain);
		}
		if (rs_cmd(&c, "RSET\r\n") != 250)
			return 1;
	}
	rs_cmd(&c, "QUIT\r\n");
	close(c.fd);
	return bad != 0;
}

int main(int argc, char **argv)
{
	long s = 10, n = 10000, r = 50, t = 4, u = 1000;
	const char *from = "sender@client.test", *domain = "bench.test";
	int opt;
	while ((opt = getopt(argc, argv, "s:n:r:t:u:f:d:")) != -1) {
		switch (opt) {
		case 's': s = atol(optarg); break;
		case 'n': n = atol(optarg); break;
		case 'r': r = atol(optarg); break;
		case 't': t = atol(optarg); break;
		case 'u': u = atol(optarg); break;
		case 'f': from = optarg; break;
		case 'd': domain = optarg; break;
		default: goto usage;
		}
	}
	if (optind != argc - 1 || s < 1 || n < 1 || r < 1 || t < 1 || u < 1)
		goto usage;
	char host[64];
	const char *colon = strrchr(argv[optind], ':');
	if (!colon || (size_t)(colon - argv[optind]) >= sizeof host)
		goto usage;
	memcpy(host, argv[optind], (size_t)(colon - argv[optind]));
	host[colon - argv[optind]] = '\0';
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		goto usage;
	for (long i = 0; i < s; i++) {
		long count = n / s + (i < n % s);
		pid_t p = fork();
		if (p == 0)
			_exit(rs_session(&sa, i, count, s, r, t, u, from, domain));
		if (p < 0) {
			perror("rcpt_source: fork");
			return 1;
		}
	}
	int st, fails = 0;
	while (wait(&st) > 0)
		fails += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	return fails != 0;
usage:
	fprintf(stderr, "usage: rcpt_source -s S -n N -r R -t T -u U -f FROM -d DOMAIN HOST:PORT\n");
	return 2;
}
