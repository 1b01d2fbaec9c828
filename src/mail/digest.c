/* digest — see digest.h: qmail-ldap's password hash formats over OpenSSL EVP (SHA-1, MD5)
 * and libcrypt. Owns: the {SCHEME} formats and their base64. Trusts: nothing it is given. */
#include "mail/digest.h"
#include <crypt.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *name;
	int salted;
	size_t dlen;                 /* digest bytes (0: crypt) */
} digest_fmts[] = {
	[DG_SSHA] = { "SSHA", 1, 20 },
	[DG_SHA] = { "SHA", 0, 20 },
	[DG_SMD5] = { "SMD5", 1, 16 },
	[DG_MD5] = { "MD5", 0, 16 },
	[DG_CRYPT] = { "crypt", 0, 0 },
	[DG_PLAIN] = { "PLAIN", 0, 0 },
};
#define DIGEST_NFMT ((int)(sizeof digest_fmts / sizeof digest_fmts[0]))

int digest_fmt_parse(const char *name)
{
	size_t n = strlen(name);
	if (n >= 2 && name[0] == '{' && name[n - 1] == '}')
		name++, n -= 2;
	for (int i = 0; i < DIGEST_NFMT; i++)
		if (strlen(digest_fmts[i].name) == n && str_ncasecmp(name, digest_fmts[i].name, n) == 0)
			return i;
	if (n == 9 && str_ncasecmp(name, "CLEARTEXT", n) == 0)
		return DG_PLAIN;
	return -1;
}

const char *digest_fmt_name(int fmt)
{
	return fmt >= 0 && fmt < DIGEST_NFMT ? digest_fmts[fmt].name : "?";
}

/* ---- base64 and hex ------------------------------------------------------------------- */

/* base64 through libcrypto (EVP_EncodeBlock/EVP_DecodeBlock); decoding is strict: whole
 * quanta of the standard alphabet, padding only at the end */
void digest_b64_encode(struct buf *out, const unsigned char *p, size_t n)
{
	size_t need = 4 * ((n + 2) / 3) + 1;
	buf_reserve(out, need);
	int w = EVP_EncodeBlock((unsigned char *)out->p + out->len, p, (int)n);
	out->len += (size_t)w;
	out->p[out->len] = '\0';
}

long digest_b64_decode(const char *s, size_t len, unsigned char *out, size_t outsz)
{
	size_t pad = 0;
	if (len % 4 || len > 65536)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '=' && i >= len - 2)
			pad++;
		else if (pad || !(isalnum(c) || c == '+' || c == '/'))
			return -1;
	}
	if (len / 4 * 3 > outsz + pad)
		return -1;
	unsigned char tmp[49152 + 3];
	int n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad)
		return -1;
	memcpy(out, tmp, (size_t)n - pad);
	return (long)((size_t)n - pad);
}

long digest_hex_decode(const char *s, unsigned char *out, size_t outsz)
{
	size_t n = strlen(s);
	if (n % 2 || n / 2 > outsz)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = str_hexval(s[i]), lo = str_hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

/* ---- the hashes ------------------------------------------------------------------------- */

/* EVP digest of pw + salt into d; 0 / -1 */
static int digest_md(int fmt, const char *pw, const unsigned char *salt, size_t saltlen,
                     unsigned char *d)
{
	const EVP_MD *md = digest_fmts[fmt].dlen == 20 ? EVP_sha1() : EVP_md5();
	unsigned int dl = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
	         EVP_DigestUpdate(ctx, pw, strlen(pw)) == 1 &&
	         (!saltlen || EVP_DigestUpdate(ctx, salt, saltlen) == 1) &&
	         EVP_DigestFinal_ex(ctx, d, &dl) == 1 && dl == digest_fmts[fmt].dlen;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* crypt(3) with a heap-allocated crypt_data (it is large); the result copied into out */
static int digest_crypt(const char *pw, const char *setting, struct buf *out)
{
	struct crypt_data *cd = calloc(1, sizeof *cd);
	if (!cd)
		return -1;
	const char *h = crypt_r(pw, setting, cd);
	int ok = h && *h && *h != '*';
	if (ok)
		buf_adds(out, h);
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return ok ? 0 : -1;
}

static int digest_make_crypt(const char *pw, const unsigned char *salt, size_t saltlen,
                             struct buf *out)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	if (salt) {
		if (saltlen == 0 || saltlen >= sizeof setting || memchr(salt, '\0', saltlen))
			return -1;
		memcpy(setting, salt, saltlen);
		setting[saltlen] = '\0';
	} else if (!crypt_gensalt_rn("$6$", 0, NULL, 0, setting, sizeof setting))
		return -1;
	buf_adds(out, "{crypt}");
	return digest_crypt(pw, setting, out);
}

int digest_make(int fmt, const char *pw, const unsigned char *salt, size_t saltlen,
                struct buf *out)
{
	unsigned char d[64 + DIGEST_SALT_MAX], rnd[DIGEST_SALT_DEFAULT];
	if (fmt < 0 || fmt >= DIGEST_NFMT)
		return -1;
	if (fmt == DG_CRYPT)
		return digest_make_crypt(pw, salt, saltlen, out);
	if (fmt == DG_PLAIN) {
		buf_printf(out, "{%s}%s", digest_fmts[fmt].name, pw);
		return *pw ? 0 : -1;
	}
	size_t dl = digest_fmts[fmt].dlen;
	if (!digest_fmts[fmt].salted)
		saltlen = 0;
	else if (!salt) {
		if (getentropy(rnd, sizeof rnd) < 0)
			return -1;
		salt = rnd, saltlen = sizeof rnd;
	} else if (saltlen == 0 || saltlen > DIGEST_SALT_MAX)
		return -1;
	if (digest_md(fmt, pw, salt, saltlen, d) < 0)
		return -1;
	if (saltlen)
		memcpy(d + dl, salt, saltlen);
	buf_printf(out, "{%s}", digest_fmts[fmt].name);
	digest_b64_encode(out, d, dl + saltlen);
	return 0;
}

/* "{SCHEME}rest" -> fmt and rest; no braces: crypt */
static int digest_scheme(const char *hash, const char **rest)
{
	const char *close = hash[0] == '{' ? strchr(hash, '}') : NULL;
	if (!close) {
		*rest = hash;
		return hash[0] == '{' ? -1 : DG_CRYPT;
	}
	char name[16];
	size_t n = (size_t)(close - hash - 1);
	if (n >= sizeof name)
		return -1;
	memcpy(name, hash + 1, n);
	name[n] = '\0';
	*rest = close + 1;
	return digest_fmt_parse(name);
}

static int digest_verify_md(int fmt, const char *b64, const char *pw)
{
	unsigned char raw[64 + DIGEST_SALT_MAX], d[64];
	size_t dl = digest_fmts[fmt].dlen, n = strlen(b64);
	long got = n <= 4 * ((sizeof raw + 2) / 3) ? digest_b64_decode(b64, n, raw, sizeof raw) : -1;
	if (got < 0 || (size_t)got < dl || (!digest_fmts[fmt].salted && (size_t)got != dl) ||
	    (digest_fmts[fmt].salted && (size_t)got == dl))
		return -1;
	if (digest_md(fmt, pw, raw + dl, (size_t)got - dl, d) < 0)
		return -1;
	return CRYPTO_memcmp(d, raw, dl) == 0;
}

int digest_verify(const char *hash, const char *pw)
{
	const char *rest;
	int fmt = digest_scheme(hash, &rest);
	if (fmt < 0 || !*rest)
		return -1;
	if (fmt == DG_PLAIN) {
		size_t n = strlen(rest);
		return n == strlen(pw) && CRYPTO_memcmp(rest, pw, n) == 0;
	}
	if (fmt != DG_CRYPT)
		return digest_verify_md(fmt, rest, pw);
	struct buf b;
	buf_init(&b);
	int r = digest_crypt(pw, rest, &b);
	if (r == 0)
		r = strlen(rest) == b.len && CRYPTO_memcmp(b.p, rest, b.len) == 0;
	else
		r = -1;
	buf_free(&b);
	return r;
}

const char *digest_cleartext(const char *hash)
{
	const char *rest;
	return digest_scheme(hash, &rest) == DG_PLAIN && *rest ? rest : NULL;
}

/* ---- challenge-response digests --------------------------------------------------------- */

static void digest_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * n] = '\0';
}

int digest_cram_md5(const char *key, const char *msg, char out[33])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	size_t dl = 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "MD5", NULL, key, strlen(key),
	               (const unsigned char *)msg, strlen(msg), d, sizeof d, &dl) || dl != 16)
		return -1;
	digest_hex(d, 16, out);
	explicit_bzero(d, sizeof d);
	return 0;
}

int digest_apop(const char *key, const char *msg, char out[33])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	         EVP_DigestUpdate(ctx, msg, strlen(msg)) == 1 &&
	         EVP_DigestUpdate(ctx, key, strlen(key)) == 1 &&
	         EVP_DigestFinal_ex(ctx, d, &dl) == 1 && dl == 16;
	EVP_MD_CTX_free(ctx);
	if (ok)
		digest_hex(d, 16, out);
	return ok ? 0 : -1;
}
