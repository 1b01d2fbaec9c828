/* hmap — an intrusive hash table keyed by uint64_t. Owns only its bucket array; the nodes
 * belong to the caller (embed struct hnode as the FIRST member and cast back). */
#ifndef TERN_HMAP_H
#define TERN_HMAP_H
#include <stddef.h>
#include <stdint.h>

struct hnode { uint64_t key; struct hnode *next; };
struct hmap { struct hnode **b; size_t nb, n; };

void hmap_init(struct hmap *h);
void hmap_free(struct hmap *h);                         /* frees buckets, not nodes */
void hmap_put(struct hmap *h, struct hnode *node);      /* key must be set; no duplicates */
struct hnode *hmap_get(const struct hmap *h, uint64_t key);
struct hnode *hmap_del(struct hmap *h, uint64_t key);
/* iterate: for (i = 0, n = NULL; (n = hmap_next(h, &i, n)); ) — do not modify while iterating */
struct hnode *hmap_next(const struct hmap *h, size_t *bucket, struct hnode *prev);
/* the 64-bit FNV-1a hash of a string: the keys of hmap users (table.c, lookup_ldap.c) and the
 * stable UIDL of an odd Maildir file name (pop3_maildir.c: never change it) */
uint64_t str_hash(const char *s);
#endif
