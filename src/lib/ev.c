/* ev — see ev.h. The only file that includes libevent headers. */
#include "lib/ev.h"
#include "lib/log.h"
#include <event2/event.h>
#include <time.h>

static struct event_base *ev_base;

void ev_init(void)
{
	struct event_config *cfg = event_config_new();
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	ev_base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!ev_base)
		log_fatal("event=ev_init_failed");
}

int ev_run(void) { return event_base_dispatch(ev_base); }
void ev_exit(void) { event_base_loopbreak(ev_base); }
void ev_reinit(void) { event_reinit(ev_base); }

struct ev *ev_new(int fd, int flags, ev_cb cb, void *arg)
{
	short w = 0;
	if (flags & EV_R) w |= EV_READ;
	if (flags & EV_W) w |= EV_WRITE;
	if (flags & EV_PERSIST) w |= EV_PERSIST;
	struct event *e = event_new(ev_base, fd, w, (event_callback_fn)cb, arg);
	if (!e)
		log_fatal("event=ev_new_failed");
	return (struct ev *)e;
}

struct ev *ev_signal(int sig, ev_cb cb, void *arg)
{
	struct event *e = evsignal_new(ev_base, sig, (event_callback_fn)cb, arg);
	if (!e)
		log_fatal("event=ev_signal_failed");
	return (struct ev *)e;
}

int ev_add(struct ev *e, long msec)
{
	if (msec < 0)
		return event_add((struct event *)e, NULL);
	struct timeval tv = { msec / 1000, (msec % 1000) * 1000 };
	return event_add((struct event *)e, &tv);
}

int ev_del(struct ev *e) { return e ? event_del((struct event *)e) : 0; }
int ev_pending(struct ev *e) { return event_pending((struct event *)e, EV_READ | EV_WRITE | EV_TIMEOUT, NULL); }
void ev_free(struct ev *e) { if (e) event_free((struct event *)e); }

long long ev_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
