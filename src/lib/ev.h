/* ev — the process's one event loop, a thin layer over libevent core so that the choice of
 * library stays in ev.c. Owns: the loop. Trusts: callers to free what they create. */
#ifndef TERN_EV_H
#define TERN_EV_H

#define EV_R       0x02
#define EV_W       0x04
#define EV_SIG     0x08
#define EV_PERSIST 0x10

struct ev;
typedef void (*ev_cb)(int fd, short what, void *arg);   /* what: EV_R|EV_W, or 0x01 timeout */
#define EV_TIMEOUT_FIRED 0x01

void ev_init(void);
int  ev_run(void);                 /* until ev_exit() or no events */
void ev_exit(void);
struct ev *ev_new(int fd, int flags, ev_cb cb, void *arg);   /* fd -1 => pure timer */
struct ev *ev_signal(int sig, ev_cb cb, void *arg);           /* persistent */
int  ev_add(struct ev *e, long msec);                          /* msec < 0: no timeout */
int  ev_del(struct ev *e);
int  ev_pending(struct ev *e);
void ev_free(struct ev *e);
/* re-initialise the loop in a child after fork() */
void ev_reinit(void);
/* monotonic milliseconds, and wall-clock seconds cached once per loop iteration */
long long ev_now_ms(void);
#endif
