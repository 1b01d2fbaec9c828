/* table — generic lookup tables: an in-memory string map, `file:PATH` tables (loaded,
 * cached per process, reloaded when the file changes, checked at most once a second) and
 * `cdb:PATH` tables (tinycdb, read at each lookup), membership in a struct cfg_list, IP/CIDR
 * matching for relayclients, and the cdb builder behind `ternctl cdb`.
 * Owns: the table cache and the text/cdb table formats. Trusts: nothing in the files — every
 * line is checked; an unreadable table answers TABLE_TEMP, never "not found".
 *
 * Text tables: one entry a line, `#` starts a comment line, blank lines ignored, CR before LF
 * ignored, keys matched case-insensitively (stored lowercased). Kinds:
 *   TABLE_LIST   `item`           (value "")
 *   TABLE_SPACE  `key value...`   (value = rest of line, trimmed; may be empty)
 *   TABLE_COLON  `key:value...`   (qmail's smtproutes / users style) */
#ifndef TERN_TABLE_H
#define TERN_TABLE_H
#include <stddef.h>
#include "mail/config.h"

/* the answer of every lookup in tern: found / not found / could not tell */
enum table_rc { TABLE_FOUND = 0, TABLE_NOTFOUND = 1, TABLE_TEMP = 2 };
enum table_kind { TABLE_LIST = 0, TABLE_SPACE = 1, TABLE_COLON = 2 };

/* --- in-memory map: string key -> opaque value (keys compared exactly; callers lowercase) */
struct table_map;
struct table_map *table_map_new(void);
/* 0 = added, 1 = key already present (map unchanged: the first entry wins) */
int table_map_put(struct table_map *m, const char *key, void *val);
void *table_map_get(const struct table_map *m, const char *key);
size_t table_map_count(const struct table_map *m);
void table_map_free(struct table_map *m, void (*freeval)(void *));

/* --- table references: "file:PATH" or "cdb:PATH" ------------------------------------- */
/* Look key up (lowercased first). On TABLE_FOUND and val != NULL, *val is a malloc'd copy
 * of the value (free it). */
int table_lookup(const char *ref, enum table_kind kind, const char *key, char **val);
/* Forget every cached file table (tests; after a config reload). */
void table_flush_cache(void);

/* Parse a text table from memory into a map of lowercased key -> malloc'd value.
 * Bad lines (NUL bytes, overlong, missing key) are reported to errs (may be NULL) and
 * skipped. */
struct table_map *table_parse(const char *name, const char *text, size_t len,
                              enum table_kind kind, struct cfg_errors *errs);
/* Read a whole regular file (at most maxlen bytes) into *out (NUL-terminated, malloc'd).
 * 0 ok / -1 with errno set (EFBIG when too large, EINVAL when not a regular file). */
int table_read_file(const char *path, size_t maxlen, char **out, size_t *len);
/* The same, and *st = fstat of the descriptor read (what was read, not what the path names
 * now: permission checks of the text use it). */
struct stat;
int table_read_file_stat(const char *path, size_t maxlen, char **out, size_t *len,
                         struct stat *st);
/* Iterate over the physical lines of a text in memory: (*s, *n) is the line without its LF
 * (and a CR before it); it->line is its 1-based number. 1 = a line, 0 = end of text. A
 * last line without LF is still a line. The line may contain NUL bytes: callers check. */
struct table_lines { const char *p; size_t len, off; int line; };
void table_lines_init(struct table_lines *it, const char *text, size_t len);
int table_lines_next(struct table_lines *it, const char **s, size_t *n);
/* trim blanks (space, tab, CR, VT, FF) at both ends of s/n in place */
void table_trim(const char **s, size_t *n);
/* Append an error "name:line: msg" to errs (ignored when errs is NULL or full). */
void table_error(struct cfg_errors *errs, const char *name, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* --- lists --------------------------------------------------------------------------- */
/* Membership of item in l: inline items then each table, case-insensitive. When item has
 * no '@' it is treated as a domain: an entry `.example.com` also matches every name ending
 * in `.example.com` (qmail rcpthosts). TABLE_TEMP when a table could not be read. */
int table_list_lookup(const struct cfg_list *l, const char *item);
/* `ldap:PATH` references are not read here: table_lookup answers them TABLE_TEMP (only the
 * lookup role can ask the directory, src/ternd/lookup/lookup_tables.c). The lookup role
 * checks the rest of a list with this, which skips them, and asks them itself. */
int table_list_lookup_noldap(const struct cfg_list *l, const char *item);
/* The keys table_list_lookup probes for item, in order, into out (at most max; pointers
 * into item): item itself, then for a domain each `.suffix`. Returns how many. */
size_t table_list_candidates(const char *item, const char **out, size_t max);
/* Does the IP address ip (textual IPv4 or IPv6) match an entry of l? Entries: exact
 * addresses (`127.0.0.1`, `::1`, `[::1]`), CIDR (`10.0.0.0/8`, `2001:db8::/32`) and
 * tcprules-style IPv4 prefixes (`192.168.` = 192.168.0.0/16). An IPv4-mapped IPv6 client
 * address also matches IPv4 entries. cdb tables are probed with the exact address and its
 * IPv4 prefixes `a.b.c.`, `a.b.`, `a.`. */
int table_ip_lookup(const struct cfg_list *l, const char *ip);
/* One pattern against one address: 1 match, 0 no match, -1 bad pattern or address. */
int table_ip_match(const char *pattern, const char *ip);
/* The patterns of IP file table path (one a line, as table_ip_lookup reads it) appended to
 * out's inline items (out->v, out->n), for a role that cannot read the file later (after
 * its chroot). A line that is not a pattern is logged (event=table_bad_pattern, key names
 * the setting) and skipped. 0, or -1 when the file cannot be read (logged). */
int table_ip_file_load(const char *path, const char *key, struct cfg_list *out);

/* --- cdb builder --------------------------------------------------------------------- */
/* Build cdbfile from textfile (TABLE_SPACE lines `key value`): writes cdbfile.tmp, fsyncs,
 * renames. Keys are lowercased; the first of duplicate keys wins on lookup. 0 / -1
 * (errors logged with file:line). */
int table_cdb_build(const char *textfile, const char *cdbfile);
int table_cdb_build_kind(const char *textfile, const char *cdbfile, enum table_kind kind,
                         struct cfg_errors *errs);
#endif
