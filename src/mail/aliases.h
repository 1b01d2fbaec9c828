/* aliases — /etc/aliases: `name: target, target, ...`, continuation lines start with a blank,
 * `#` comment lines, targets optionally double-quoted (`\` escapes inside quotes). A target
 * is an address (`user`, `user@domain`, `<user@domain>`), `|command`, `/path/file`, or
 * `:include:/path` (a file of more targets, separated by commas or newlines, `#` comments,
 * read at expansion time).
 * Owns: the parsed alias table and the expansion rules: recursion through local aliases
 * with a depth limit (ALIASES_MAXDEPTH, deeper = loop), suppression of duplicate targets,
 * and sendmail's self-reference rule (`joe: joe, other` delivers to the user joe).
 * Trusts: nothing in the files; every parse error names file:line; a file that cannot be
 * read makes lookups answer TABLE_TEMP, never "no such alias". Nor a file that others could
 * have written (aliases_unsafe): an aliases file must be owned by root (or, in development,
 * the account running ternd) and writable by its owner only; an include file writable by
 * its owner only. Such a file is refused with `event=alias_unsafe` in the log and TABLE_TEMP
 * (the recipients defer), as sendmail refuses unsafe alias and include files. */
#ifndef TERN_ALIASES_H
#define TERN_ALIASES_H
#include <stddef.h>
#include <stdint.h>
#include "mail/config.h"

#define ALIASES_MAXDEPTH 10

enum aliases_kind { ALIASES_ADDR = 0, ALIASES_PROG = 1, ALIASES_FILE = 2 };

struct aliases_target {
	int kind;            /* enum aliases_kind */
	char *value;         /* address (domain lowercased), "|command" or "/path" */
	uint64_t uid, gid;   /* owner of the file the target came from (aliases or include) */
	int self;            /* an address naming the alias itself: deliver to the user,
	                        do not expand as an alias again */
	int incl;            /* came from an :include: file (uid/gid: that file's owner), not
	                        from the aliases file */
};

struct aliases_list {
	struct aliases_target *v;
	size_t n, cap;
};

struct stat;
/* Whether a file may be trusted for alias targets, from the fstat of the descriptor read:
 * NULL = yes, else the reason: "world_writable", "group_writable", or (aliases file only)
 * "bad_owner" — owned by neither root nor owner_ok. include = 1 for an :include: file, whose
 * owner may be anyone (its programs run as that owner). Pure. */
const char *aliases_unsafe(const struct stat *st, int include, uint64_t owner_ok);

struct aliases;
/* spec: the value of the `aliases` key ("" = no aliases, "file:PATH" or "/PATH").
 * owner_ok: the account besides root that may own the file (the account running ternd in
 * development; 0 = root only). Parse errors go to errs (may be NULL). A file that cannot
 * be read, or is unsafe, gives a table whose lookups answer TABLE_TEMP. Returns NULL only
 * for a malformed spec. */
struct aliases *aliases_open(const char *spec, uint64_t owner_ok, struct cfg_errors *errs);
/* Parse from memory (tests, fuzzer); owner uid/gid stand for the file's owner. */
struct aliases *aliases_from_text(const char *name, const char *text, size_t len,
                                  uint64_t uid, uint64_t gid, struct cfg_errors *errs);
/* Re-read the file if it changed (checked at most once a second); 1 if reloaded. */
int aliases_refresh(struct aliases *a, struct cfg_errors *errs);
/* Is name (a local part, case-insensitive) an alias? TABLE_FOUND/NOTFOUND/TEMP. */
int aliases_has(struct aliases *a, const char *name);

/* decides whether an address's domain is ours (then `user@domain` targets are expanded as
 * aliases too); returns TABLE_FOUND / TABLE_NOTFOUND / TABLE_TEMP */
typedef int (*aliases_islocal_fn)(const char *domain, void *arg);
/* Expand name into its final targets (appended to out). Returns TABLE_FOUND,
 * TABLE_NOTFOUND (name is no alias; out untouched) or TABLE_TEMP (unreadable file or
 * include, alias loop, too deep; diag says which; out untouched). islocal may be NULL
 * (then no domain is local). */
int aliases_expand(struct aliases *a, const char *name, aliases_islocal_fn islocal, void *arg,
                   struct aliases_list *out, char *diag, size_t dlen);
void aliases_list_free(struct aliases_list *l);
void aliases_free(struct aliases *a);

/* Parse a comma-separated target list (the right side of an alias, or an include file)
 * into out; name/line locate errors. Returns the number of errors. Exposed for tests. */
int aliases_parse_targets(const char *name, int line, const char *s, size_t n,
                          uint64_t uid, uint64_t gid, struct aliases_list *out,
                          struct cfg_errors *errs);
#endif
