/* hmap — see hmap.h. Chained buckets, doubling at load factor 1. */
#include "lib/hmap.h"
#include "lib/buf.h"
#include <stdlib.h>

static size_t slot(uint64_t key, size_t nb)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)(key & (nb - 1));
}

void hmap_init(struct hmap *h) { h->b = NULL; h->nb = 0; h->n = 0; }
void hmap_free(struct hmap *h) { free(h->b); hmap_init(h); }

static void grow(struct hmap *h)
{
	size_t nb = h->nb ? h->nb * 2 : 64;
	struct hnode **b = xcalloc(nb, sizeof *b);
	for (size_t i = 0; i < h->nb; i++)
		for (struct hnode *n = h->b[i], *next; n; n = next) {
			next = n->next;
			size_t s = slot(n->key, nb);
			n->next = b[s];
			b[s] = n;
		}
	free(h->b);
	h->b = b;
	h->nb = nb;
}

void hmap_put(struct hmap *h, struct hnode *node)
{
	if (h->n + 1 > h->nb)
		grow(h);
	size_t s = slot(node->key, h->nb);
	node->next = h->b[s];
	h->b[s] = node;
	h->n++;
}

struct hnode *hmap_get(const struct hmap *h, uint64_t key)
{
	if (!h->nb)
		return NULL;
	for (struct hnode *n = h->b[slot(key, h->nb)]; n; n = n->next)
		if (n->key == key)
			return n;
	return NULL;
}

struct hnode *hmap_del(struct hmap *h, uint64_t key)
{
	if (!h->nb)
		return NULL;
	for (struct hnode **pp = &h->b[slot(key, h->nb)]; *pp; pp = &(*pp)->next)
		if ((*pp)->key == key) {
			struct hnode *n = *pp;
			*pp = n->next;
			h->n--;
			return n;
		}
	return NULL;
}

struct hnode *hmap_next(const struct hmap *h, size_t *bucket, struct hnode *prev)
{
	if (prev && prev->next)
		return prev->next;
	for (size_t i = prev ? *bucket + 1 : *bucket; i < h->nb; i++)
		if (h->b[i]) {
			*bucket = i;
			return h->b[i];
		}
	return NULL;
}

uint64_t str_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}
