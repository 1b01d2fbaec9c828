/* fuzz_sasl — SMTP AUTH exchanges (src/mail/sasl.c) on arbitrary input: the first line is the
 * AUTH argument, each further line one client answer. Invariants: every return code is a
 * known one; an error leaves exactly its reply and wiped credentials; a prompt is a 334
 * line; finished credentials have a non-empty login of at most SASL_MAXFIELD bytes without
 * control characters, a non-empty secret, and a response that is "" or 32 lowercase hex
 * digits (CRAM-MD5 only). */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/sasl.h"

static void fuzz_check_cred(const struct sasl *s)
{
	const struct sasl_cred *c = &s->cred;
	size_t n = strlen(c->login), r = strlen(c->response);
	if (n == 0 || n > SASL_MAXFIELD || !*c->secret || strlen(c->authzid) > SASL_MAXFIELD)
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)c->login[i] < 0x20 || c->login[i] == 0x7f)
			__builtin_trap();
	if (r != 0 && (r != 32 || s->mech != SASL_CRAM_MD5 || strspn(c->response,
	                                                            "0123456789abcdef") != 32))
		__builtin_trap();
	if (s->mech == SASL_CRAM_MD5 && (r != 32 || c->secret[0] != '<'))
		__builtin_trap();
}

static int fuzz_check(const struct sasl *s, int rc)
{
	if (rc < 0 || rc >= SASL_NRC)
		__builtin_trap();
	if (rc == SASL_NEXT && strncmp(s->reply, "334 ", 4) != 0)
		__builtin_trap();
	if (rc >= SASL_E_SYNTAX && (strcmp(s->reply, sasl_reply(rc)) != 0 || s->cred.secret[0] ||
	                            s->cred.login[0]))
		__builtin_trap();
	if (rc == SASL_DONE)
		fuzz_check_cred(s);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	struct sasl s;
	memcpy(in, data, size);
	in[size] = '\0';
	char *nl = memchr(in, '\n', size);
	if (nl)
		*nl = '\0';
	int rc = fuzz_check(&s, sasl_start(&s, in, SASL_MECH_ALL, "mx.example"));
	char *p = nl ? nl + 1 : NULL;
	while (p && rc == SASL_NEXT) {
		size_t left = size - (size_t)(p - in);
		char *e = memchr(p, '\n', left);
		size_t len = e ? (size_t)(e - p) : left;
		rc = fuzz_check(&s, sasl_step(&s, p, len));
		p = e ? e + 1 : NULL;
	}
	sasl_clear(&s);
	free(in);
	return 0;
}
