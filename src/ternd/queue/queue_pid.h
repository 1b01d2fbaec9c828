/* queue_pid — <spool>/ternd.pid, written by the queue role (queue_pid.c). */
#ifndef TERN_QUEUE_PID_H
#define TERN_QUEUE_PID_H
/* write the parent's pid into <spool>/ternd.pid (spoolfd: the spool directory); logs failures */
void queue_pid_write(int spoolfd);
/* remove it (leaving: orderly stop or the parent gone) */
void queue_pid_remove(int spoolfd);
#endif
