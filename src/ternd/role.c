/* role — the role names, the check of a restarted peer's channel (M_PEER_NEW) and the crash
 * points of the test build, shared by every role.
 * Owns: the name table of enum role; role_peer_new(); role_crashpoint(). Trusts: the
 * environment only in the test build (TERN_CRASHPOINT), which the production build does not
 * read; M_PEER_NEW only from the parent channel (the callers see to that). */
#include "ternd/role.h"
#include "ternd/proto.h"
#include "lib/log.h"
#include "lib/msg.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *role_names[R_NROLES] = {
	"parent", "smtp", "lookup", "queue", "scheduler", "mda", "mta", "control"
};

const char *role_name(enum role r) { return (r >= 0 && r < R_NROLES) ? role_names[r] : "?"; }

int role_by_name(const char *name)
{
	for (int i = 0; i < R_NROLES; i++)
		if (strcmp(role_names[i], name) == 0)
			return i;
	return -1;
}

int role_peer_new(enum role self, struct msg_reader *r, int fd)
{
	uint64_t peer = msg_get_u64(r);
	if (msg_done(r) == 0 && fd >= 0 && peer > R_PARENT && peer < R_NROLES && peer != self)
		return (int)peer;
	log_warn("event=bad_peer_new peer=%llu fd=%d", (unsigned long long)peer, fd);
	if (fd >= 0)
		close(fd);
	return -1;
}

int role_peer_lost(struct chan *c)
{
	if (chan_peer_closed(c)) {
		log_warn("event=peer_lost peer=%s", chan_peer(c));
		return 0;
	}
	log_err("event=peer_channel_broken peer=%s reason=\"malformed frame\"; exiting",
	        chan_peer(c));
	return -1;
}

/* Crash points exist only in the test build (-DTERN_TEST): production never reads
 * TERN_CRASHPOINT. */
#ifndef TERN_TEST
int role_crashpoint_armed(const char *name) { (void)name; return 0; }
void role_crashpoint(const char *name) { (void)name; }
#else
int role_crashpoint_armed(const char *name)
{
	static const char *cp;
	static int init;
	if (!init) {
		cp = getenv("TERN_CRASHPOINT");
		init = 1;
	}
	return cp && strcmp(cp, name) == 0;
}

void role_crashpoint(const char *name)
{
	if (role_crashpoint_armed(name)) {
		log_warn("event=crashpoint name=%s", name);
		kill(getpid(), SIGKILL);
	}
}
#endif
