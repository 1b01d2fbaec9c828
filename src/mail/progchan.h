/* progchan — MMDF's external channel interface (seed 004, doc/PROG.md) as two pure pieces:
 * the program's argument vector (the row's words with %h, %s and %% substituted, then MMDF's
 * trailing `msgfd addressfd responsefd name sender y`), and the reply protocol the program
 * speaks on responsefd: one line per address (A address ok, M message ok, T temporary,
 * P permanent), then, if it answered A for any, one line for the text it read after the
 * address list. What the program did not answer becomes a temporary failure of the run.
 * Owns: those two grammars and the mapping of a run's end to per-address results.
 * Trusts: nothing — the template comes from tern.conf, host and sender from the envelope
 * (checked here before they become words), every reply byte from the program. */
#ifndef TERN_PROGCHAN_H
#define TERN_PROGCHAN_H
#include <stddef.h>

#define PROGCHAN_MSGFD   0        /* the message (seekable, read only, LF line ends) */
#define PROGCHAN_ADDRFD  3        /* the address list: one per line, then end of file */
#define PROGCHAN_RESPFD  4        /* the replies (the same socket as ADDRFD, other direction) */
#define PROGCHAN_MAXWORDS 32      /* words of a program template */
#define PROGCHAN_LINEMAX 512      /* bytes of one reply line */
#define PROGCHAN_TEXTMAX 300      /* bytes of a reply's text kept (sanitised) */

/* 0 if program is a valid template (an absolute path without %, then up to MAXWORDS-1
 * words using only %h %s %%), else -1 with why */
int progchan_template_check(const char *program, char *why, size_t whylen);

/* The argument vector of a run (NULL-terminated, free with progchan_argv_free): the
 * template's words, each substitution inside its own word (it never splits or adds one),
 * then "0" "3" "4" name sender "y". -1 with why when a value is unsafe: a control
 * character or a byte above 0x7e in host or sender, a word that a substitution makes start
 * with '-', a sender or name starting with '-', a name that is not [A-Za-z0-9._-]. */
char **progchan_argv(const char *program, const char *host, const char *sender,
                     const char *name, char *why, size_t whylen);
void progchan_argv_free(char **argv);

/* may addr go on the address list? (one line: no control character, not empty) */
int progchan_address_ok(const char *addr);

enum progchan_st { PROGCHAN_PENDING = 0, PROGCHAN_OK, PROGCHAN_TEMP, PROGCHAN_PERM };
enum progchan_scope { PROGCHAN_RCPT = 0, PROGCHAN_SITE = 1 };

struct progchan_rcpt {
	int st;                       /* enum progchan_st */
	int scope;                    /* enum progchan_scope (TEMP only) */
	int addr_ok;                  /* answered A: waits for the final line */
	char text[PROGCHAN_TEXTMAX + 1];
};

struct progchan {
	size_t n, next;               /* addresses; the next one a reply line is for */
	int mode;                     /* 0, 'A' or 'M': MMDF lets a run use one of the two */
	int answered;                 /* any reply line at all */
	int done;                     /* every address has its result */
	int broken;                   /* protocol error: why holds it */
	char why[128];
	char line[PROGCHAN_LINEMAX + 1];
	size_t linelen;
	struct progchan_rcpt *r;
};

void progchan_init(struct progchan *p, size_t n);
void progchan_free(struct progchan *p);
/* bytes the program wrote on responsefd, in any pieces */
void progchan_feed(struct progchan *p, const char *data, size_t len);
/* the run is over: exited with code (exited = 1), or killed by sig (timedout: by the time
 * limit). Every address still without a result gets one; when the program answered nothing
 * at all, qmail's exit codes decide (0 delivered, 100 permanent, else temporary). */
void progchan_end(struct progchan *p, int exited, int code, int sig, int timedout);
#endif
