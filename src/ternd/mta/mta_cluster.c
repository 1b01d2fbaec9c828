/* mta_cluster — see mta_cluster.h. Owns: nothing. Trusts: the queued message's bytes are
 * read through src/mail/cluster.c's bounded scanner. */
#include "ternd/mta/mta_cluster.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "mail/cluster.h"
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define MTA_CLUSTER_CHUNK 65536

/* X-Tern-Cluster lines in the message's header section (read in chunks; stops at its end) */
static unsigned mta_cluster_hops(int fd)
{
	char *b = xmalloc(MTA_CLUSTER_CHUNK);
	struct cluster_hops h;
	off_t off = 0;
	ssize_t n;
	cluster_hops_init(&h);
	while (!h.done && ((n = pread(fd, b, MTA_CLUSTER_CHUNK, off)) > 0 ||
	                   (n < 0 && errno == EINTR)))
		if (n > 0) {
			cluster_hops_feed(&h, b, (size_t)n);
			off += n;
		}
	free(b);
	return h.hops;
}

int mta_cluster_job(const struct config *cfg, struct mta_job *j)
{
	char line[300];
	unsigned hops = mta_cluster_hops(j->fd);
	if (hops >= cfg->ldapclusterhops) {
		log_info("event=cluster_loop id=%016llx host=%s hops=%u limit=%llu",
		         (unsigned long long)j->msgid, j->host, hops,
		         (unsigned long long)cfg->ldapclusterhops);
		return -1;
	}
	int n = cluster_header_line(cfg->me, line, sizeof line);
	j->txn.size += n > 0 ? (uint64_t)n : 0;
	return 0;
}
