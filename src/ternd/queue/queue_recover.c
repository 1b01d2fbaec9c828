/* queue_recover — the queue role's recovery at start (doc/QUEUE.md "Recovery at start"):
 * garbage in tmp/ and unacknowledged data files are removed, every committed envelope is
 * parsed and its journal replayed, and anything damaged is moved to quarantine/ (never
 * silently dropped). Owns: nothing after start. Trusts: nothing in the spool beyond what the
 * envelope parser accepts. */
#include "ternd/queue/queue.h"
#include "ternd/queue/queue_fs.h"
#include "lib/log.h"
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int recover_one(const char *name)
{
	uint64_t id;
	char *text = NULL, err[128];
	size_t len, valid;
	if (env_idparse(name, &id) < 0) {
		queue_fs_quarantine(QD_ENV, name, "not a queue id");
		return 0;
	}
	struct qmsg *m = queue_new_msg();
	if (queue_fs_read_env(id, &text, &len) < 0 || env_parse(text, len, &m->env, &valid, err, sizeof err) < 0) {
		if (text)
			free(text);
		queue_fs_quarantine(QD_ENV, name, "damaged envelope");
		queue_fs_quarantine(QD_DATA, name, "its envelope is damaged");   /* never dropped */
		queue_free_msg(m);
		return 0;
	}
	free(text);
	int dfd = queue_fs_open_data(id);
	if (dfd < 0 || m->env.id != id) {
		if (dfd >= 0)
			close(dfd);
		queue_fs_quarantine(QD_ENV, name, dfd < 0 ? "message data missing" : "id mismatch");
		if (dfd >= 0 || errno != ENOENT)
			queue_fs_quarantine(QD_DATA, name, "its envelope is damaged");
		queue_free_msg(m);
		return 0;
	}
	close(dfd);
	if (valid < len)
		queue_fs_truncate_env(id, valid);
	queue_sf_fit(m);
	queue_msg_put(m);
	return 1;
}

void queue_recover(void)
{
	int n = 0, gone = 0;
	DIR *d = fdopendir(dup(queue_fs_dirfd(QD_TMP)));
	for (struct dirent *de; d && (de = readdir(d));)
		if (de->d_name[0] != '.')
			unlinkat(queue_fs_dirfd(QD_TMP), de->d_name, 0);
	if (d)
		closedir(d);
	d = fdopendir(dup(queue_fs_dirfd(QD_ENV)));
	for (struct dirent *de; d && (de = readdir(d));)
		if (de->d_name[0] != '.')
			n += recover_one(de->d_name);
	if (d)
		closedir(d);
	d = fdopendir(dup(queue_fs_dirfd(QD_DATA)));
	for (struct dirent *de; d && (de = readdir(d));) {
		uint64_t id;
		if (de->d_name[0] == '.' || (env_idparse(de->d_name, &id) == 0 && queue_msg_get(id)))
			continue;
		unlinkat(queue_fs_dirfd(QD_DATA), de->d_name, 0);   /* never acknowledged */
		gone++;
	}
	if (d)
		closedir(d);
	log_info("event=recovered messages=%d removed_unacknowledged=%d", n, gone);
}

static void recover_schedule_one(struct qmsg *m, void *arg)
{
	queue_ctl_committed(m);          /* no agent has registered yet: straight through */
	if (env_all_final(&m->env))
		queue_mark_dirty(m);        /* msg_after_sync -> msg_check_done */
}

void queue_recover_schedule(void)
{
	queue_foreach(recover_schedule_one, NULL);
}
