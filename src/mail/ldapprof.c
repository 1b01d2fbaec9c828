/* ldapprof — the delivery profile's encoding (src/mail/ldapprof.h): one printable line of
 * `key=value` words, values %XX-escaped so that the line survives the envelope journal
 * (which blanks control characters) and argv.
 * Owns: the encoding and the qmail-ldap words for qmailDotMode and deliveryMode. Trusts:
 * nothing it decodes. */
#include "mail/ldapprof.h"
#include "lib/buf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ldapprof_dotmode_words[] = {
	[LDAPPROF_LDAPONLY] = "ldaponly", [LDAPPROF_LDAPWITHPROG] = "ldapwithprog",
	[LDAPPROF_DOTONLY] = "dotonly", [LDAPPROF_BOTH] = "both", [LDAPPROF_NONE] = "none",
	[LDAPPROF_NONE + 1] = NULL,
};

static const struct { const char *word; unsigned flags; } ldapprof_modes[] = {
	{ "normal", 0 }, { "localdelivery", 0 },
	{ "nombox", LDAPPROF_NOMBOX }, { "forwardonly", LDAPPROF_NOMBOX },
	{ "nolocal", LDAPPROF_NOMBOX }, { "noforward", LDAPPROF_NOFORWARD },
	{ "noprogram", LDAPPROF_NOPROGRAM }, { "reply", LDAPPROF_REPLY },
};

void ldapprof_init(struct ldapprof *p)
{
	memset(p, 0, sizeof *p);
	p->store = xstrdup("");
	p->reply = xstrdup("");
	p->dotmode = LDAPPROF_LDAPONLY;
}

void ldapprof_free(struct ldapprof *p)
{
	free(p->store);
	free(p->reply);
	for (size_t i = 0; i < p->nforward; i++)
		free(p->forward[i]);
	for (size_t i = 0; i < p->nprogram; i++)
		free(p->program[i]);
	memset(p, 0, sizeof *p);
}

int ldapprof_dotmode(const char *word)
{
	for (size_t i = 0; ldapprof_dotmode_words[i]; i++)
		if (str_casecmp(word, ldapprof_dotmode_words[i]) == 0)
			return (int)i;
	return -1;
}

const char *ldapprof_dotmode_name(int dotmode)
{
	return dotmode >= 0 && dotmode <= LDAPPROF_NONE ? ldapprof_dotmode_words[dotmode] : "?";
}

const char *ldapprof_mode_name(unsigned flag)
{
	for (size_t i = 0; i < sizeof ldapprof_modes / sizeof ldapprof_modes[0]; i++)
		if (ldapprof_modes[i].flags == flag)
			return ldapprof_modes[i].word;     /* the first word of the flag */
	return "?";
}

int ldapprof_mode(const char *word, unsigned *flags)
{
	for (size_t i = 0; i < sizeof ldapprof_modes / sizeof ldapprof_modes[0]; i++)
		if (str_casecmp(word, ldapprof_modes[i].word) == 0) {
			*flags = ldapprof_modes[i].flags;
			return 0;
		}
	return -1;
}

int ldapprof_store_ok(const char *st)
{
	size_t n = strlen(st);
	if (n < 2 || st[0] != '/' || strstr(st, "/../") || st[n - 1] == ' ' ||
	    (n >= 3 && strcmp(st + n - 3, "/..") == 0))
		return 0;
	for (; *st; st++)
		if ((unsigned char)*st < 0x20 || *st == 0x7f)
			return 0;
	return 1;
}

static void ldapprof_word(struct buf *out, const char *key, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	if (out->len)
		buf_addc(out, ' ');
	buf_printf(out, "%s=", key);
	for (const unsigned char *s = (const unsigned char *)v; *s; s++) {
		if (*s <= 0x20 || *s >= 0x7f || *s == '%' || *s == '=') {
			buf_addc(out, '%');
			buf_addc(out, hex[*s >> 4]);
			buf_addc(out, hex[*s & 15]);
		} else {
			buf_addc(out, (char)*s);
		}
	}
}

static void ldapprof_num(struct buf *out, const char *key, uint64_t v)
{
	char n[24];
	if (!v)
		return;
	snprintf(n, sizeof n, "%llu", (unsigned long long)v);
	ldapprof_word(out, key, n);
}

void ldapprof_encode(const struct ldapprof *p, struct buf *out)
{
	struct buf b;
	buf_init(&b);
	if (p->store && *p->store)
		ldapprof_word(&b, "store", p->store);
	ldapprof_word(&b, "dotmode", ldapprof_dotmode_name(p->dotmode));
	for (size_t i = 0; i < sizeof ldapprof_modes / sizeof ldapprof_modes[0]; i++) {
		unsigned f = ldapprof_modes[i].flags;
		/* each flag once, under its first word */
		int first = 1;
		for (size_t j = 0; j < i; j++)
			if (ldapprof_modes[j].flags == f)
				first = 0;
		if (f && first && (p->mode & f))
			ldapprof_word(&b, "mode", ldapprof_modes[i].word);
	}
	for (size_t i = 0; i < p->nforward; i++)
		ldapprof_word(&b, "forward", p->forward[i]);
	for (size_t i = 0; i < p->nprogram; i++)
		ldapprof_word(&b, "program", p->program[i]);
	ldapprof_num(&b, "quotasize", p->quotasize);
	ldapprof_num(&b, "quotacount", p->quotacount);
	ldapprof_num(&b, "sizemax", p->sizemax);
	if (p->reply && *p->reply)
		ldapprof_word(&b, "reply", p->reply);
	if (p->table)
		ldapprof_word(&b, "table", "1");
	buf_add(out, b.p ? b.p : "", b.len);
	buf_free(&b);
}

/* the value s..end unescaped into a new string; NULL if an escape is malformed or a NUL */
static char *ldapprof_unescape(const char *s, const char *end)
{
	char *v = xmalloc((size_t)(end - s) + 1), *o = v;
	for (; s < end; s++) {
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		int h = -1;
		if (end - s >= 3 && str_hexval(s[1]) >= 0 && str_hexval(s[2]) >= 0)
			h = str_hexval(s[1]) << 4 | str_hexval(s[2]);
		if (h <= 0) {            /* malformed, or an escaped NUL */
			free(v);
			return NULL;
		}
		*o++ = (char)h;
		s += 2;
	}
	*o = '\0';
	return v;
}

static int ldapprof_u64(const char *v, uint64_t *out)
{
	return str_to_u64(v, 1, UINT64_MAX, out);
}

/* one key=value; 0 / -1 with why set */
static int ldapprof_set(struct ldapprof *p, const char *key, size_t klen, char *v, char *why,
                        size_t whylen, unsigned *seen)
{
	static const char *const single[] = { "store", "dotmode", "quotasize", "quotacount",
		"sizemax", "reply", "table" };
	for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
		if (strlen(single[i]) == klen && memcmp(key, single[i], klen) == 0) {
			if (*seen & (1u << i)) {
				snprintf(why, whylen, "%s given twice", single[i]);
				return -1;
			}
			*seen |= 1u << i;
		}
#define KEY(k) (klen == sizeof k - 1 && memcmp(key, k, klen) == 0)
	if (KEY("store")) {
		free(p->store);
		p->store = xstrdup(v);
	} else if (KEY("reply")) {
		free(p->reply);
		p->reply = xstrdup(v);
	} else if (KEY("dotmode")) {
		if ((p->dotmode = ldapprof_dotmode(v)) < 0) {
			snprintf(why, whylen, "unknown dotmode");
			return -1;
		}
	} else if (KEY("mode")) {
		unsigned f;
		if (ldapprof_mode(v, &f) < 0) {
			snprintf(why, whylen, "unknown mode");
			return -1;
		}
		p->mode |= f;
	} else if (KEY("forward") || KEY("program")) {
		int fw = KEY("forward");
		size_t *n = fw ? &p->nforward : &p->nprogram;
		if (*n >= LDAPPROF_MAXLIST || !*v) {
			snprintf(why, whylen, "%s list too long or empty value", fw ? "forward" : "program");
			return -1;
		}
		(fw ? p->forward : p->program)[(*n)++] = xstrdup(v);
	} else if (KEY("table")) {
		if (strcmp(v, "1") != 0) {
			snprintf(why, whylen, "table must be 1");
			return -1;
		}
		p->table = 1;
	} else if (KEY("quotasize") || KEY("quotacount") || KEY("sizemax")) {
		uint64_t *d = KEY("quotasize") ? &p->quotasize : KEY("quotacount") ? &p->quotacount :
		              &p->sizemax;
		if (ldapprof_u64(v, d) < 0) {
			snprintf(why, whylen, "bad number");
			return -1;
		}
	}
#undef KEY
	return 0;                    /* unknown keys: skipped */
}

int ldapprof_decode(const char *s, struct ldapprof *p, char *why, size_t whylen)
{
	unsigned seen = 0;
	ldapprof_init(p);
	while (*s) {
		if (*s == ' ') {
			s++;
			continue;
		}
		const char *w = s, *eq = NULL;
		for (; *s && *s != ' '; s++)
			if (*s == '=' && !eq)
				eq = s;
		if (!eq || eq == w) {
			snprintf(why, whylen, "a word without key=value");
			return -1;
		}
		char *v = ldapprof_unescape(eq + 1, s);
		if (!v) {
			snprintf(why, whylen, "malformed escape");
			return -1;
		}
		int rc = ldapprof_set(p, w, (size_t)(eq - w), v, why, whylen, &seen);
		free(v);
		if (rc < 0)
			return -1;
	}
	return 0;
}
