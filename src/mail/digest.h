/* digest — password hashes in qmail-ldap's (and OpenLDAP's userPassword) formats:
 * `{SSHA}` base64(SHA1(password + salt) + salt), `{SHA}` base64(SHA1(password)), `{SMD5}`
 * base64(MD5(password + salt) + salt), `{MD5}` base64(MD5(password)) and `{crypt}` (the
 * system's crypt(3): DES, $1$, $5$, $6$, $y$ … whatever libcrypt knows), and `{PLAIN}`
 * (also read as `{CLEARTEXT}`): the password itself, which CRAM-MD5 and APOP logins need
 * (the server must compute the client's digest from it). A stored hash
 * without a {scheme} prefix is a crypt hash, as qmail-ldap treats it. Pure apart from the
 * random salt it draws (getentropy) when none is given.
 * Owns: the formats. Trusts: nothing — hashes and salts from users are checked. */
#ifndef TERN_DIGEST_H
#define TERN_DIGEST_H
#include <stddef.h>
#include "lib/buf.h"

enum digest_fmt { DG_SSHA = 0, DG_SHA, DG_SMD5, DG_MD5, DG_CRYPT, DG_PLAIN };

#define DIGEST_SALT_DEFAULT 8    /* bytes of random salt for {SSHA} / {SMD5} */
#define DIGEST_SALT_MAX 64

/* "SSHA", "{ssha}", "crypt", "PLAIN", "CLEARTEXT" … (case-insensitive, braces optional);
 * -1 if unknown */
int digest_fmt_parse(const char *name);
const char *digest_fmt_name(int fmt);          /* "SSHA" … "crypt" */

/* Append the hash of pw to out, "{SCHEME}…". salt/saltlen: the salt bytes (SSHA, SMD5) or
 * the crypt setting string ("ab", "$6$rounds=5000$salt$"); NULL = a random one (crypt:
 * SHA-512, "$6$"). 0 / -1 (bad salt, or the hash could not be made). */
int digest_make(int fmt, const char *pw, const unsigned char *salt, size_t saltlen,
                struct buf *out);
/* 1 if pw matches hash, 0 if not, -1 if hash is malformed or of an unknown scheme. */
int digest_verify(const char *hash, const char *pw);
/* The password of a {PLAIN} / {CLEARTEXT} hash (a pointer into hash), else NULL. */
const char *digest_cleartext(const char *hash);
/* Lowercase hex of HMAC-MD5(key, msg) (CRAM-MD5, RFC 2195) or MD5(msg + key) (APOP, RFC
 * 1939) into out (33 bytes); 0 / -1 */
int digest_cram_md5(const char *key, const char *msg, char out[33]);
int digest_apop(const char *key, const char *msg, char out[33]);

/* base64 (RFC 4648, with padding). decode: -1 on any bad character or length; out needs
 * room for 3 * (len / 4) bytes. */
void digest_b64_encode(struct buf *out, const unsigned char *p, size_t n);
long digest_b64_decode(const char *s, size_t len, unsigned char *out, size_t outsz);
/* hex to bytes (either case); -1 on odd length or a bad digit */
long digest_hex_decode(const char *s, unsigned char *out, size_t outsz);
#endif
