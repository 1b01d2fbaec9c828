/* sendmail — the sendmail(8) command-line interface: ternctl answers as sendmail by argv[0].
 * Owns: option parsing, header fix-ups (-t, Bcc removal, From/Date/Message-ID) and the
 * sysexits.h exit codes; the message goes into the maildrop (src/mail/maildrop.h). */
#ifndef TERN_SENDMAIL_H
#define TERN_SENDMAIL_H

/* Returns the exit status (sysexits.h), or does not return (-bp / -bi exec mailq /
 * newaliases next to the running binary). Reads the message on fd 0; with -bs an SMTP
 * dialogue on fd 0 / fd 1; with -q it runs `ternctl flush` next to the binary. */
int sendmail_main(int argc, char **argv);
#endif
