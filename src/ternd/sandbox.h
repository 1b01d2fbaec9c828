/* sandbox — confine a role once its privileged setup is done: an empty capability bounding set
 * and no ambient capabilities (while still root, before the setuid), no_new_privs, and a seccomp
 * filter that allows only the system calls of that role. A role that makes any other call logs
 * one line naming it and dies by SIGSYS (doc/ARCHITECTURE.md, Privileges).
 * Owns: the per-role allow-lists and the SIGSYS report. Trusts: the caller to pass its role. */
#ifndef TERN_SANDBOX_H
#define TERN_SANDBOX_H
#include "ternd/role.h"

/* as root, before dropping to the role's account: empty the capability bounding set and clear
 * the ambient set, so that nothing the role later execs or becomes can hold a capability.
 * Not root: clears the ambient set only (the bounding set needs CAP_SETPCAP). 0 or -1. */
int sandbox_drop_caps(void);

/* after the setuid and chroot: set no_new_privs, then load the seccomp filter of role r.
 * mode is the `sandbox` key: "yes" (forbidden call: log and die), "log" (the kernel's audit
 * log records it and the call goes on; for finding a missing entry), "no" (no filter).
 * 0 or -1 (logged). */
int sandbox_apply(enum role r, const char *mode);

/* before sandbox_apply(R_MTA): the mta's filter also allows socket(AF_UNIX, SOCK_STREAM) for
 * lmtp's unix:/PATH destinations (called when lmtpsocketdirs is set; doc/LMTP.md) */
void sandbox_mta_allow_unix(void);
#endif
