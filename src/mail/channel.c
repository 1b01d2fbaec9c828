/* channel — see channel.h. The built-in rows are row[0..CHANNEL_T_COUNT-1] in
 * channel_transport order, so a transport's own row is row[transport]. */
#include "mail/channel.h"
#include "mail/progchan.h"
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const channel_tnames[CHANNEL_T_COUNT] = { "local", "smtp", "qmqp", "cluster",
                                                                  "prog", "lmtp", "list" };

void channel_table_init(struct channel_table *t)
{
	memset(t, 0, sizeof *t);
	for (int i = 0; i < CHANNEL_T_COUNT; i++) {
		snprintf(t->row[i].name, sizeof t->row[i].name, "%s", channel_tnames[i]);
		t->row[i].transport = (enum channel_transport)i;
	}
	t->n = CHANNEL_T_COUNT;
}

const char *channel_transport_name(enum channel_transport tr)
{
	return tr >= 0 && tr < CHANNEL_T_COUNT ? channel_tnames[tr] : "?";
}

static int channel_transport_of(const char *w, enum channel_transport *tr)
{
	for (int i = 0; i < CHANNEL_T_COUNT; i++)
		if (strcmp(w, channel_tnames[i]) == 0) {
			*tr = (enum channel_transport)i;
			return 0;
		}
	return -1;
}

static int channel_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CHANNEL_NAMEMAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

static struct channel_row *channel_lookup(struct channel_table *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->row[i].name, name) == 0)
			return &t->row[i];
	return NULL;
}

const struct channel_row *channel_find(const struct channel_table *t, const char *name)
{
	return name ? channel_lookup((struct channel_table *)t, name) : NULL;
}

const struct channel_row *channel_builtin(const struct channel_table *t, enum channel_transport tr)
{
	return &t->row[tr >= 0 && tr < CHANNEL_T_COUNT ? tr : CHANNEL_T_SMTP];
}

enum channel_role channel_role(const struct channel_row *r)
{
	return r->transport == CHANNEL_T_LOCAL || r->transport == CHANNEL_T_PROG ? CHANNEL_MDA :
	       r->transport == CHANNEL_T_LIST ? CHANNEL_QUEUE : CHANNEL_MTA;
}

int channel_is_local(const struct channel_table *t, const char *name)
{
	const struct channel_row *r = channel_find(t, name);
	return r && r->transport == CHANNEL_T_LOCAL;
}

/* a decimal in [min,max] */
static int channel_number(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static int channel_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "on", "1", "true" }, *const no[] = { "no", "off", "0", "false" };
	for (size_t i = 0; i < 4; i++) {
		if (strcmp(v, yes[i]) == 0)
			return *out = 1, 0;
		if (strcmp(v, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

/* a prog row's program= or user= value into dst (bounded, printable) */
static int channel_text(struct channel_row *r, const char *key, const char *v, char *dst,
                        size_t max, char *err, size_t errlen)
{
	size_t n = strlen(v);
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			n = max + 1;
	if (n > max || (dst != r->program && strpbrk(v, " \t:/"))) {
		snprintf(err, errlen, "channel %s: %s must be 1 to %zu printable characters%s", r->name,
		         key, max, dst == r->program ? "" : " without blanks, ':' or '/'");
		return -1;
	}
	memcpy(dst, v, n + 1);
	return 0;
}

/* one key=value into r; 0 or -1 with err */
static int channel_option(struct channel_row *r, int builtin, char *opt, char *err, size_t errlen)
{
	static const struct { const char *key; unsigned bit; uint64_t min, max; size_t off; } nums[] = {
		{ "concurrency", CHANNEL_SET_CONC, 1, 10000, offsetof(struct channel_row, concurrency) },
		{ "perhost", CHANNEL_SET_PERHOST, 1, 1000, offsetof(struct channel_row, perhost) },
		{ "retry", CHANNEL_SET_RETRY, 0, 86400, offsetof(struct channel_row, retry) },
		{ "recipients", CHANNEL_SET_RCPTS, 1, CHANNEL_RCPTMAX, offsetof(struct channel_row, rcpts) },
		{ "timeout", CHANNEL_SET_TIMEOUT, 1, 86400, offsetof(struct channel_row, timeout) },
	};
	char *v = strchr(opt, '=');
	if (!v || v == opt || !v[1]) {
		snprintf(err, errlen, "channel %s: expected key=value, got '%.60s'", r->name, opt);
		return -1;
	}
	*v++ = '\0';
	if (strcmp(opt, "transport") == 0) {
		enum channel_transport tr;
		if (channel_transport_of(v, &tr) < 0) {
			snprintf(err, errlen, "channel %s: unknown transport '%.40s' (local, smtp, qmqp, cluster, prog or lmtp)", r->name, v);
			return -1;
		}
		if (builtin && tr != r->transport) {
			snprintf(err, errlen, "channel %s: a built-in channel keeps its transport %s", r->name, channel_tnames[r->transport]);
			return -1;
		}
		r->transport = tr;
		return 0;
	}
	if (strcmp(opt, "program") == 0)
		return channel_text(r, opt, v, r->program, CHANNEL_PROGMAX, err, errlen);
	if (strcmp(opt, "user") == 0)
		return channel_text(r, opt, v, r->user, CHANNEL_USERMAX, err, errlen);
	if (strcmp(opt, "grouphost") == 0) {
		if (channel_bool(v, &r->grouphost) < 0) {
			snprintf(err, errlen, "channel %s: grouphost must be yes or no, not '%.40s'", r->name, v);
			return -1;
		}
		r->set |= CHANNEL_SET_GROUP;
		return 0;
	}
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
		if (strcmp(opt, nums[i].key) == 0) {
			if (channel_number(v, nums[i].min, nums[i].max, (uint64_t *)((char *)r + nums[i].off)) < 0) {
				snprintf(err, errlen, "channel %s: %s must be a number from %" PRIu64 " to %" PRIu64 ", not '%.40s'",
				         r->name, opt, nums[i].min, nums[i].max, v);
				return -1;
			}
			r->set |= nums[i].bit;
			return 0;
		}
	snprintf(err, errlen, "channel %s: unknown key '%.40s' (transport, concurrency, perhost, retry, recipients, grouphost; prog: program, user, timeout)", r->name, opt);
	return -1;
}

/* the next blank-separated word of *s, double quotes removed (a quoted part may hold
 * blanks: program="/usr/bin/uux - %h!rmail"); NULL at the end, *bad = 1 for an open quote */
static char *channel_word(char **s, int *bad)
{
	while (**s == ' ' || **s == '\t')
		(*s)++;
	if (!**s)
		return NULL;
	char *w = *s, *o = *s;
	int q = 0;
	for (; **s && (q || (**s != ' ' && **s != '\t')); (*s)++)
		if (**s == '"')
			q = !q;
		else
			*o++ = **s;
	if (**s)
		(*s)++;
	*o = '\0';
	*bad = q;
	return w;
}

/* a prog row needs its program (well formed, doc/PROG.md) and its account; the other
 * transports take neither */
static int channel_check_prog(const struct channel_row *r, char *err, size_t errlen)
{
	char why[128];
	if (r->transport != CHANNEL_T_PROG) {
		if (!*r->program && !*r->user && !(r->set & CHANNEL_SET_TIMEOUT))
			return 0;
		snprintf(err, errlen, "channel %s: program, user and timeout are for transport=prog only", r->name);
		return -1;
	}
	if (!*r->program || !*r->user) {
		snprintf(err, errlen, "channel %s: transport=prog needs program=\"/PATH ...\" and user=ACCOUNT", r->name);
		return -1;
	}
	if (progchan_template_check(r->program, why, sizeof why) < 0) {
		snprintf(err, errlen, "channel %s: program: %s", r->name, why);
		return -1;
	}
	return 0;
}

int channel_parse(struct channel_table *t, char *s, char *err, size_t errlen)
{
	int bad = 0;
	char *name = channel_word(&s, &bad), *opt;
	if (!name || !channel_name_ok(name)) {
		snprintf(err, errlen, "channel: a name of 1 to %d characters a-z 0-9 _ - expected, got '%.40s'",
		         CHANNEL_NAMEMAX, name ? name : "");
		return -1;
	}
	struct channel_row *old = channel_lookup(t, name), r;
	if (old && old->declared) {
		snprintf(err, errlen, "channel %s: declared twice", name);
		return -1;
	}
	int builtin = old != NULL;
	if (old)
		r = *old;
	else {
		if (t->n >= CHANNEL_MAX) {
			snprintf(err, errlen, "channel %s: more than %d channels", name, CHANNEL_MAX);
			return -1;
		}
		memset(&r, 0, sizeof r);
		snprintf(r.name, sizeof r.name, "%s", name);
		r.transport = CHANNEL_T_COUNT;
	}
	while ((opt = channel_word(&s, &bad))) {
		if (bad) {
			snprintf(err, errlen, "channel %s: a double quote is not closed", r.name);
			return -1;
		}
		if (channel_option(&r, builtin, opt, err, errlen) < 0)
			return -1;
	}
	if (r.transport == CHANNEL_T_COUNT) {
		snprintf(err, errlen, "channel %s: transport=local|smtp|qmqp|cluster|prog|lmtp is required", r.name);
		return -1;
	}
	if (channel_check_prog(&r, err, errlen) < 0)
		return -1;
	r.declared = 1;
	if (old)
		*old = r;
	else
		t->row[t->n++] = r;
	return 0;
}

/* the defaults of a built-in row from today's keys. lmtp delivers into a mail store on this
 * machine or next to it: local numbers (concurrencylocal, retrylocal) with every connection
 * of the channel allowed to one destination (there is usually one: Dovecot's socket), and
 * SMTP's batching (100 recipients of one destination per transaction, one reply each). */
static void channel_builtin_defaults(struct channel_row *d, enum channel_transport tr,
                                     const struct channel_keys *k)
{
	int local = tr == CHANNEL_T_LOCAL || tr == CHANNEL_T_LIST;   /* a list: one per job */
	int prog = tr == CHANNEL_T_PROG;
	int near = local || tr == CHANNEL_T_LMTP;     /* a mail store on this machine or next to it */
	d->concurrency = near || prog ? k->concurrencylocal : k->concurrencyremote;
	d->perhost = near || prog ? k->concurrencylocal : k->smtpconnperhost;
	d->retry = near ? k->retrylocal : k->retryremote;
	d->rcpts = local ? 1 : CHANNEL_RCPTMAX;
	d->grouphost = !local;
	d->timeout = CHANNEL_TIMEOUT;
}

static void channel_fill(struct channel_row *r, const struct channel_row *d)
{
	if (!(r->set & CHANNEL_SET_CONC))
		r->concurrency = d->concurrency ? d->concurrency : 1;
	if (!(r->set & CHANNEL_SET_PERHOST))   /* local has one destination: all of it */
		r->perhost = r->transport == CHANNEL_T_LOCAL ? r->concurrency :
		             d->perhost ? d->perhost : 1;
	if (!(r->set & CHANNEL_SET_RETRY))
		r->retry = d->retry;
	if (!(r->set & CHANNEL_SET_RCPTS))
		r->rcpts = d->rcpts ? d->rcpts : 1;
	if (!(r->set & CHANNEL_SET_GROUP))
		r->grouphost = d->grouphost;
	if (!(r->set & CHANNEL_SET_TIMEOUT))
		r->timeout = d->timeout ? d->timeout : CHANNEL_TIMEOUT;
}

void channel_table_finish(struct channel_table *t, const struct channel_keys *k)
{
	for (int i = 0; i < CHANNEL_T_COUNT; i++) {
		struct channel_row d;
		channel_builtin_defaults(&d, (enum channel_transport)i, k);
		channel_fill(&t->row[i], &d);
	}
	for (size_t i = CHANNEL_T_COUNT; i < t->n; i++)
		channel_fill(&t->row[i], &t->row[t->row[i].transport]);
}

void channel_format(const struct channel_row *r, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s transport=%s concurrency=%" PRIu64 " perhost=%" PRIu64
	         " retry=%" PRIu64 " recipients=%" PRIu64 " grouphost=%s", r->name,
	         channel_tnames[r->transport], r->concurrency, r->perhost, r->retry, r->rcpts,
	         r->grouphost ? "yes" : "no");
	if (r->transport == CHANNEL_T_PROG) {
		size_t n = strlen(out);
		snprintf(out + n, outlen > n ? outlen - n : 0, " program=\"%s\" user=%s timeout=%" PRIu64,
		         r->program, r->user, r->timeout);
	}
}
