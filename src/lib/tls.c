/* tls — see tls.h. Contexts are made once per role at start (before chroot and privilege
 * drop); a SIGHUP restarts the roles, which makes them again from the files.
 * Owns: the OpenSSL contexts it makes and OpenSSL's process-wide initialisation (tls_init).
 * Trusts: the files it is pointed at to be what the operator configured (the caller opened
 * or checked the path); the key, chain, DH and CA files are still parsed and checked by
 * OpenSSL, and a peer's certificate is only ever verified, never taken on its word. */
#include "lib/tls.h"
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct tls_ctx {
	SSL_CTX *ctx;
};

static void tls_err(char *err, size_t errlen, const char *what, const char *path)
{
	char e[160] = "";
	unsigned long code = ERR_peek_last_error();
	if (code) {
		const char *r = ERR_reason_error_string(code);
		snprintf(e, sizeof e, ": %s", r ? r : "error");
	}
	snprintf(err, errlen, "%s%s%s%s", what, path ? " " : "", path ? path : "", e);
	ERR_clear_error();
}

int tls_protocols_parse(const char *s, int *minv, int *maxv)
{
	static const struct { const char *name; int v; } names[] = {
		{ "TLSv1", TLS1_VERSION }, { "TLSv1.0", TLS1_VERSION }, { "TLSv1.1", TLS1_1_VERSION },
		{ "TLSv1.2", TLS1_2_VERSION }, { "TLSv1.3", TLS1_3_VERSION },
	};
	int lo = 0, hi = 0;
	char w[16];
	if (!s) {
		*minv = TLS1_2_VERSION;
		*maxv = TLS1_3_VERSION;
		return 0;
	}
	while (*s) {
		size_t n = strcspn(s, " ,\t");
		if (n == 0) {
			s++;
			continue;
		}
		if (n >= sizeof w)
			return -1;
		memcpy(w, s, n);
		w[n] = '\0';
		s += n;
		int v = 0;
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strcasecmp(w, names[i].name) == 0)
				v = names[i].v;
		if (!v)
			return -1;
		if (!lo || v < lo)
			lo = v;
		if (v > hi)
			hi = v;
	}
	if (!lo)
		return -1;
	*minv = lo;
	*maxv = hi;
	return 0;
}

int tls_init(void)
{
	/* OpenSSL writes with write(2): a vanished peer must be an error, not a death */
	signal(SIGPIPE, SIG_IGN);
	if (!OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS |
	        OPENSSL_INIT_LOAD_CONFIG, NULL))
		return -1;
	unsigned char b[16];
	if (RAND_status() != 1 || RAND_bytes(b, sizeof b) != 1)   /* seeds the DRBG now */
		return -1;
	return 0;
}

static SSL_CTX *tls_ctx_common(const SSL_METHOD *m, const struct tls_conf *c, char *err,
                               size_t errlen)
{
	int minv, maxv;
	if (tls_protocols_parse(c->protocols, &minv, &maxv) < 0) {
		snprintf(err, errlen, "tlsprotocols: unknown protocol in '%s'", c->protocols);
		return NULL;
	}
	SSL_CTX *ctx = SSL_CTX_new(m);
	if (!ctx) {
		tls_err(err, errlen, "cannot make a TLS context", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, minv);
	SSL_CTX_set_max_proto_version(ctx, maxv);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                         SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* partial writes from a buffer that moves (io's output buffer is consumed from the
	 * front), and record buffers given back while a connection is idle */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                      SSL_MODE_RELEASE_BUFFERS);
	if (c->ciphers && *c->ciphers && !SSL_CTX_set_cipher_list(ctx, c->ciphers)) {
		tls_err(err, errlen, "bad cipher list", c->ciphers);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int tls_load_cert(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1) {
		tls_err(err, errlen, "cannot read the certificate chain in", path);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM) != 1) {
		tls_err(err, errlen, "cannot read the private key in", path);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errlen, "the private key does not match the certificate in", path);
		return -1;
	}
	return 0;
}

static int tls_load_dh(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
	if (!path || !*path) {
		SSL_CTX_set_dh_auto(ctx, 1);
		return 0;
	}
	BIO *b = BIO_new_file(path, "r");
	EVP_PKEY *dh = b ? PEM_read_bio_Parameters(b, NULL) : NULL;
	BIO_free(b);
	if (!dh || !SSL_CTX_set0_tmp_dh_pkey(ctx, dh)) {
		EVP_PKEY_free(dh);
		tls_err(err, errlen, "cannot read DH parameters from", path);
		return -1;
	}
	return 0;
}

/* the finished context in tern's wrapper; NULL (and ctx freed) if out of memory */
static struct tls_ctx *tls_wrap(SSL_CTX *ctx, char *err, size_t errlen)
{
	struct tls_ctx *t = calloc(1, sizeof *t);
	if (!t) {
		SSL_CTX_free(ctx);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->ctx = ctx;
	return t;
}

struct tls_ctx *tls_server_new(const struct tls_conf *c, char *err, size_t errlen)
{
	static const unsigned char sid[] = "tern";
	SSL_CTX *ctx = tls_ctx_common(TLS_server_method(), c, err, errlen);
	if (!ctx)
		return NULL;
	if (!c->certfile || tls_load_cert(ctx, c->certfile, err, errlen) < 0 ||
	    tls_load_dh(ctx, c->dhfile, err, errlen) < 0) {
		if (!c->certfile)
			snprintf(err, errlen, "no certificate file");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return tls_wrap(ctx, err, errlen);
}

struct tls_ctx *tls_client_new(const struct tls_conf *c, char *err, size_t errlen)
{
	SSL_CTX *ctx = tls_ctx_common(TLS_client_method(), c, err, errlen);
	if (!ctx)
		return NULL;
	/* the system store as one bundle file, read now: a hashed directory would be opened at
	 * verification time, inside the chroot and the seccomp filter */
	const char *bundle = c->cafile && *c->cafile ? c->cafile : getenv(X509_get_default_cert_file_env());
	if (!bundle || !*bundle)
		bundle = X509_get_default_cert_file();
	int ok = SSL_CTX_load_verify_locations(ctx, bundle, NULL);
	if (ok != 1 && !(c->cafile && *c->cafile)) {
		ERR_clear_error();
		ok = SSL_CTX_set_default_verify_paths(ctx);
	}
	if (ok != 1) {
		tls_err(err, errlen, "cannot load trusted certificates from",
		    c->cafile && *c->cafile ? c->cafile : "the system store");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (c->certfile && *c->certfile && tls_load_cert(ctx, c->certfile, err, errlen) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* the chain is always checked and the result kept (SSL_get_verify_result); whether a
	 * failure matters is the caller's policy, decided after the handshake */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return tls_wrap(ctx, err, errlen);
}

void tls_ctx_free(struct tls_ctx *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

void *tls_ctx_ssl_ctx(struct tls_ctx *t) { return t->ctx; }

int tls_cert_check(const char *certfile, time_t *expires, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tls_err(err, errlen, "cannot make a TLS context", NULL);
		return -1;
	}
	int r = tls_load_cert(ctx, certfile, err, errlen);
	if (r == 0) {
		struct tm tm;
		X509 *x = SSL_CTX_get0_certificate(ctx);
		if (!x || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
			snprintf(err, errlen, "cannot read the expiry date of %s", certfile);
			r = -1;
		} else
			*expires = timegm(&tm);
	}
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return r;
}
