/* dreq — see dreq.h. Trusts nothing it reads. */
#include "ternd/dreq.h"
#include <stdlib.h>
#include <string.h>

void dreq_put(struct msg *out, const struct dreq *d)
{
	msg_u64(out, d->job);
	msg_u64(out, d->msgid);
	msg_str(out, d->channel);
	msg_str(out, d->host);
	msg_str(out, d->sender);
	msg_u64(out, d->size);
	msg_u64(out, (uint64_t)d->arrival);
	msg_u64(out, d->n);
	for (size_t k = 0; k < d->n; k++) {
		msg_u64(out, d->r[k].idx);
		proto_put_target(out, &d->r[k].t);
	}
}

void dreq_free(struct dreq *d)
{
	for (size_t k = 0; k < d->n; k++)
		target_free(&d->r[k].t);
	free(d->r);
	free(d->channel);
	free(d->host);
	free(d->sender);
	uint64_t job = d->job, msgid = d->msgid;
	memset(d, 0, sizeof *d);
	d->job = job;
	d->msgid = msgid;
}

int dreq_get(struct msg_reader *r, struct dreq *d)
{
	memset(d, 0, sizeof *d);
	d->job = msg_get_u64(r);
	d->msgid = msg_get_u64(r);
	d->channel = xstrdup(msg_get_str(r));
	d->host = xstrdup(msg_get_str(r));
	d->sender = xstrdup(msg_get_str(r));
	d->size = msg_get_u64(r);
	d->arrival = (int64_t)msg_get_u64(r);
	uint64_t n = msg_get_u64(r);
	if (r->err || n == 0 || n > DREQ_MAXRCPT || !*d->channel) {
		r->err = 1;
		dreq_free(d);
		return -1;
	}
	d->r = xcalloc(n, sizeof *d->r);
	for (uint64_t k = 0; k < n; k++) {
		d->r[k].idx = msg_get_u64(r);
		if (r->err || proto_get_target(r, &d->r[k].t) < 0)
			break;
		d->n++;
		/* every recipient of a request is of its channel and host */
		if (strcmp(d->r[k].t.channel, d->channel) != 0 || strcmp(d->r[k].t.host, d->host) != 0) {
			r->err = 1;
			break;
		}
	}
	if (d->n != n || msg_done(r) < 0) {
		r->err = 1;
		dreq_free(d);
		return -1;
	}
	return 0;
}

void dres_begin(struct msg *out, uint64_t job, uint64_t msgid, size_t n)
{
	msg_init(out, M_DELIVERED, 0);
	msg_u64(out, job);
	msg_u64(out, msgid);
	msg_u64(out, n);
}

void dres_put(struct msg *out, const struct dres *x)
{
	msg_u64(out, x->idx);
	msg_u64(out, (uint64_t)x->st);
	msg_u64(out, x->st == D_TEMP ? (uint64_t)x->scope : 0);
	msg_str(out, x->diag ? x->diag : "");
	msg_str(out, x->remote ? x->remote : "");
}

int dres_check(const struct msg_reader *r)
{
	struct msg_reader v = *r;
	(void)msg_get_u64(&v);
	(void)msg_get_u64(&v);
	uint64_t n = msg_get_u64(&v);
	if (v.err || n > DREQ_MAXRCPT)
		return -1;
	for (uint64_t k = 0; k < n && !v.err; k++) {
		(void)msg_get_u64(&v);
		uint64_t st = msg_get_u64(&v), scope = msg_get_u64(&v);
		(void)msg_get_str(&v);
		(void)msg_get_str(&v);
		if (st < D_OK || st > D_PERM || scope > DSCOPE_SITE)
			return -1;
	}
	return msg_done(&v);
}

void dres_get_head(struct msg_reader *r, uint64_t *job, uint64_t *msgid, uint64_t *n)
{
	*job = msg_get_u64(r);
	*msgid = msg_get_u64(r);
	*n = msg_get_u64(r);
}

void dres_get(struct msg_reader *r, struct dres *x)
{
	x->idx = msg_get_u64(r);
	x->st = (int)msg_get_u64(r);
	x->scope = (int)msg_get_u64(r);
	x->diag = msg_get_str(r);
	x->remote = msg_get_str(r);
}
