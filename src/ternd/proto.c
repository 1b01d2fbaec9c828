/* proto — helpers for the composite fields of proto.h. Trusts nothing it reads. */
#include "ternd/proto.h"
#include <string.h>

void proto_put_target(struct msg *m, const struct target *t)
{
	msg_str(m, t->channel); msg_str(m, t->host); msg_str(m, t->address); msg_str(m, t->user);
	msg_u64(m, t->uid); msg_u64(m, t->gid); msg_str(m, t->home); msg_str(m, t->local);
	msg_str(m, t->ext); msg_str(m, t->domain); msg_str(m, t->instruction);
	msg_str(m, t->profile ? t->profile : "");
}

int proto_get_target(struct msg_reader *r, struct target *t)
{
	memset(t, 0, sizeof *t);
	t->channel = xstrdup(msg_get_str(r)); t->host = xstrdup(msg_get_str(r));
	t->address = xstrdup(msg_get_str(r)); t->user = xstrdup(msg_get_str(r));
	t->uid = msg_get_u64(r); t->gid = msg_get_u64(r); t->home = xstrdup(msg_get_str(r));
	t->local = xstrdup(msg_get_str(r)); t->ext = xstrdup(msg_get_str(r));
	t->domain = xstrdup(msg_get_str(r)); t->instruction = xstrdup(msg_get_str(r));
	t->profile = xstrdup(msg_get_str(r));
	if (r->err || !*t->channel) {
		target_free(t);
		return -1;
	}
	return 0;
}
