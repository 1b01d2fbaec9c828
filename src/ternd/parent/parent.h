/* parent — the root process of ternd (see parent.c). */
#ifndef TERN_PARENT_H
#define TERN_PARENT_H
#include "mail/config.h"
int parent_main(struct config *cfg, const char *path, const char *argv0, int debug);
void parent_prepare_spool(struct config *cfg);
#endif
