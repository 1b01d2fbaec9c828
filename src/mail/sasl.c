/* sasl — see sasl.h: the server side of SMTP AUTH's PLAIN, LOGIN and CRAM-MD5 exchanges.
 * Owns: the exchange's state machine, its syntax checks and error replies. Trusts: nothing
 * the client sends (every line bounded, strictly decoded, every field checked). */
#include "mail/sasl.h"
#include "mail/digest.h"
#include "lib/buf.h"
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum sasl_step { ST_NONE = 0, ST_PLAIN, ST_LOGIN_USER, ST_LOGIN_PASS, ST_CRAM };

static const char *const sasl_mechs[SASL_NMECH] = {
	[SASL_PLAIN] = "PLAIN", [SASL_LOGIN] = "LOGIN", [SASL_CRAM_MD5] = "CRAM-MD5",
};

static const char *const sasl_replies[SASL_NRC] = {
	[SASL_DONE] = "", [SASL_NEXT] = "",
	[SASL_E_SYNTAX] = "501 5.5.4 Syntax: AUTH mechanism [initial-response]",
	[SASL_E_MECH] = "504 5.5.4 Unrecognized authentication type",
	[SASL_E_B64] = "501 5.5.2 Cannot decode base64 data",
	[SASL_E_TOOLONG] = "500 5.5.6 Authentication exchange line is too long",
	[SASL_E_CANCEL] = "501 5.7.0 Authentication cancelled",
	[SASL_E_MALFORMED] = "501 5.5.2 Malformed authentication data",
};

const char *sasl_reply(int rc)
{
	return rc >= 0 && rc < SASL_NRC ? sasl_replies[rc] : "";
}

int sasl_mech_parse(const char *name, size_t len)
{
	for (int i = 0; i < SASL_NMECH; i++)
		if (strlen(sasl_mechs[i]) == len && str_ncasecmp(name, sasl_mechs[i], len) == 0)
			return i;
	return -1;
}

const char *sasl_mech_name(int mech)
{
	return mech >= 0 && mech < SASL_NMECH ? sasl_mechs[mech] : "?";
}

/* ---- the pieces ------------------------------------------------------------------------- */

long sasl_b64_line(const char *line, size_t len, unsigned char *out, size_t outsz)
{
	if (len == 1 && line[0] == '*')
		return -SASL_E_CANCEL;
	if (len > SASL_MAXLINE)
		return -SASL_E_TOOLONG;
	if (len == 0)
		return 0;
	if (memchr(line, '\0', len))
		return -SASL_E_B64;
	long n = digest_b64_decode(line, len, out, outsz);
	return n < 0 ? -SASL_E_B64 : n;
}

/* a field of n bytes into out (SASL_MAXFIELD + 1): no NUL; a name (login, authzid) has no
 * control character either, since it reaches the logs and the users table; 0 / -1 */
static int sasl_field(const unsigned char *p, size_t n, char *out, int name)
{
	if (n > SASL_MAXFIELD || memchr(p, '\0', n))
		return -1;
	for (size_t i = 0; name && i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int sasl_plain_decode(const unsigned char *p, size_t n, struct sasl_cred *c)
{
	const unsigned char *end = p + n;
	const unsigned char *z1 = memchr(p, '\0', n);
	const unsigned char *z2 = z1 ? memchr(z1 + 1, '\0', (size_t)(end - z1 - 1)) : NULL;
	if (!z2)
		return SASL_E_MALFORMED;
	const unsigned char *cid = z1 + 1, *pw = z2 + 1;
	size_t cidlen = (size_t)(z2 - cid), pwlen = (size_t)(end - pw);
	if (cidlen == 0 || pwlen == 0 || sasl_field(p, (size_t)(z1 - p), c->authzid, 1) < 0 ||
	    sasl_field(cid, cidlen, c->login, 1) < 0 || sasl_field(pw, pwlen, c->secret, 0) < 0)
		return SASL_E_MALFORMED;
	c->response[0] = '\0';
	return SASL_DONE;
}

static int sasl_hexdigit(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int sasl_cram_decode(const unsigned char *p, size_t n, struct sasl_cred *c)
{
	const unsigned char *sp = n ? memrchr(p, ' ', n) : NULL;
	if (!sp || sp == p || (size_t)(p + n - sp - 1) != SASL_HEXDIGEST)
		return SASL_E_MALFORMED;
	for (size_t i = 0; i < SASL_HEXDIGEST; i++) {
		unsigned char h = sp[1 + i];
		if (!sasl_hexdigit(h))
			return SASL_E_MALFORMED;
		c->response[i] = (char)(h >= 'A' && h <= 'F' ? h - 'A' + 'a' : h);
	}
	c->response[SASL_HEXDIGEST] = '\0';
	if (sasl_field(p, (size_t)(sp - p), c->login, 1) < 0) {
		c->response[0] = '\0';
		return SASL_E_MALFORMED;
	}
	return SASL_DONE;
}

int sasl_cram_challenge(char *out, size_t outsz, uint64_t rnd, uint64_t unixtime,
                        const char *host)
{
	int n = snprintf(out, outsz, "<%llu.%llu@%.*s>", (unsigned long long)rnd,
	                 (unsigned long long)unixtime, SASL_MAXHOST, *host ? host : "localhost");
	return n > 0 && (size_t)n < outsz ? 0 : -1;
}

/* ---- the exchange ----------------------------------------------------------------------- */

static int sasl_fail(struct sasl *s, int rc)
{
	snprintf(s->reply, sizeof s->reply, "%s", sasl_reply(rc));
	explicit_bzero(&s->cred, sizeof s->cred);
	s->step = ST_NONE;
	return rc;
}

static int sasl_prompt(struct sasl *s, int step, const char *line)
{
	snprintf(s->reply, sizeof s->reply, "%s", line);
	s->step = step;
	return SASL_NEXT;
}

static int sasl_cram_start(struct sasl *s, const char *host)
{
	uint64_t rnd = 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (getentropy(&rnd, sizeof rnd) < 0)           /* uniqueness is what the RFC asks */
		rnd = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
	if (sasl_cram_challenge(s->cred.secret, sizeof s->cred.secret, rnd, (uint64_t)ts.tv_sec,
	                        host) < 0)
		return sasl_fail(s, SASL_E_MALFORMED);
	struct buf b;
	char tmp[sizeof s->reply];
	buf_init(&b);
	buf_adds(&b, "334 ");
	digest_b64_encode(&b, (const unsigned char *)s->cred.secret, strlen(s->cred.secret));
	snprintf(tmp, sizeof tmp, "%s", b.p);
	buf_free(&b);
	return sasl_prompt(s, ST_CRAM, tmp);
}

/* one decoded client message for the current step */
static int sasl_data(struct sasl *s, const unsigned char *p, size_t n)
{
	int rc;
	switch (s->step) {
	case ST_PLAIN:
		rc = sasl_plain_decode(p, n, &s->cred);
		break;
	case ST_LOGIN_USER:
		if (n == 0 || sasl_field(p, n, s->cred.login, 1) < 0)
			return sasl_fail(s, SASL_E_MALFORMED);
		return sasl_prompt(s, ST_LOGIN_PASS, SASL_LOGIN_PASS_PROMPT);
	case ST_LOGIN_PASS:
		rc = n && sasl_field(p, n, s->cred.secret, 0) == 0 ? SASL_DONE : SASL_E_MALFORMED;
		break;
	case ST_CRAM:
		rc = sasl_cram_decode(p, n, &s->cred);
		break;
	default:
		rc = SASL_E_SYNTAX;
		break;
	}
	if (rc != SASL_DONE)
		return sasl_fail(s, rc);
	s->step = ST_NONE;
	s->reply[0] = '\0';
	return SASL_DONE;
}

int sasl_step(struct sasl *s, const char *line, size_t len)
{
	unsigned char dec[SASL_MAXLINE / 4 * 3];
	long n = sasl_b64_line(line, len, dec, sizeof dec);
	if (n < 0)
		return sasl_fail(s, (int)-n);
	int rc = sasl_data(s, dec, (size_t)n);
	explicit_bzero(dec, sizeof dec);
	return rc;
}

int sasl_start(struct sasl *s, const char *arg, unsigned allowed, const char *host)
{
	memset(s, 0, sizeof *s);
	s->mech = -1;
	const char *sp = strchr(arg, ' ');
	size_t mlen = sp ? (size_t)(sp - arg) : strlen(arg);
	if (mlen == 0 || (sp && (!sp[1] || strchr(sp + 1, ' '))))
		return sasl_fail(s, SASL_E_SYNTAX);
	int m = sasl_mech_parse(arg, mlen);
	if (m < 0 || !(allowed & SASL_MECH_BIT(m)))
		return sasl_fail(s, SASL_E_MECH);
	s->mech = m;
	s->cred.mech = sasl_mechs[m];
	if (m == SASL_CRAM_MD5)
		return sp ? sasl_fail(s, SASL_E_SYNTAX) : sasl_cram_start(s, host);
	int first = m == SASL_PLAIN ? ST_PLAIN : ST_LOGIN_USER;
	if (!sp)
		return sasl_prompt(s, first, m == SASL_PLAIN ? "334 " : SASL_LOGIN_USER_PROMPT);
	s->step = first;
	const char *ir = sp + 1;
	if (strcmp(ir, "=") == 0)                       /* RFC 4954: an empty initial response */
		return sasl_data(s, (const unsigned char *)"", 0);
	return sasl_step(s, ir, strlen(ir));
}

void sasl_clear(struct sasl *s)
{
	explicit_bzero(s, sizeof *s);
	s->mech = -1;
}
