/* smtp_auth — STARTTLS (RFC 3207), the implicit TLS of smtps (RFC 8314) and AUTH (RFC 4954)
 * for one inbound SMTP session, as its listener's policy says. Called by smtp_session.c
 * only; see smtp_auth.c. */
#ifndef TERN_SMTP_AUTH_H
#define TERN_SMTP_AUTH_H
#include <stddef.h>
#include <stdint.h>

struct smtp_session;

/* EHLO's keywords: STARTTLS on a tls=starttls listener with a certificate until encrypted;
 * AUTH where the listener allows it, on an encrypted session unless authplaintext */
int smtp_auth_tls_offered(const struct smtp_session *s);
int smtp_auth_offered(const struct smtp_session *s);
/* the STARTTLS and AUTH commands */
void smtp_auth_starttls(struct smtp_session *s, const char *arg);
void smtp_auth_cmd(struct smtp_session *s, const char *arg);
/* after each consumed command line: begin the handshake STARTTLS asked for */
void smtp_auth_after_command(struct smtp_session *s);
/* IO_TLSREADY: smtps greets; after STARTTLS the session starts over (RFC 3207 4.2) */
void smtp_auth_tls_ready(struct smtp_session *s);
/* forget the exchange and the authenticated login (STARTTLS, end of session) */
void smtp_auth_clear(struct smtp_session *s);
/* MODE_AUTH input: one line answers the 334 prompt; returns octets consumed (0: wait) */
size_t smtp_auth_input(struct smtp_session *s, const char *p, size_t n);
/* M_AUTH_RESULT (held for the throttle's delay), and the answer once the delay is over */
void smtp_auth_result(struct smtp_session *s, uint64_t verdict, uint64_t delay,
                      uint64_t close, const char *login);
void smtp_auth_delayed(struct smtp_session *s);
#endif
