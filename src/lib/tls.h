/* tls — OpenSSL contexts for io: a server context from a PEM file holding the private key
 * and the certificate chain (qmail's servercert.pem), a client context with the trust store
 * and an optional client certificate, protocol and cipher settings. The only files that
 * include OpenSSL's ssl headers are tls.c and io.c.
 * Owns: the contexts it makes. Trusts: the files it is pointed at to be what the operator
 * configured (the caller opened or checked the path); nothing in them is taken unchecked. */
#ifndef TERN_TLS_H
#define TERN_TLS_H
#include <stddef.h>
#include <time.h>

struct tls_ctx;

struct tls_conf {
	const char *certfile;    /* PEM: private key and chain (server; client cert if set) */
	const char *cafile;      /* PEM bundle of trusted CAs; NULL: the system store */
	const char *ciphers;     /* TLS <= 1.2 cipher list (OpenSSL syntax); NULL: default */
	const char *protocols;   /* "TLSv1.2 TLSv1.3" (space or comma separated); NULL: those */
	const char *dhfile;      /* PEM DH parameters for DHE (server); NULL: built-in groups */
};

/* NULL on failure, with a one-line reason in err */
struct tls_ctx *tls_server_new(const struct tls_conf *c, char *err, size_t errlen);
struct tls_ctx *tls_client_new(const struct tls_conf *c, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);

/* Check a certificate file as ternd -n does: readable, a private key that matches the first
 * certificate. 0 and its notAfter in *expires, or -1 and the reason in err. */
int tls_cert_check(const char *certfile, time_t *expires, char *err, size_t errlen);
/* Parse a protocol list; 0 and the min/max OpenSSL versions, or -1 (unknown word). */
int tls_protocols_parse(const char *s, int *minv, int *maxv);

/* Seed OpenSSL's random generator and load what it needs from the file system, before a
 * chroot or a seccomp filter makes that impossible. 0 ok, -1 failed. */
int tls_init(void);

/* for io.c */
void *tls_ctx_ssl_ctx(struct tls_ctx *ctx);
#endif
