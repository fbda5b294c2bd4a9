/* The model directory's polling and SIGHUP reloads, on a thread of their own
 * (rescan.c): a scan reads, hashes and validates files, which takes as long
 * as they are large, and the main thread must stay free to act on signals. */
#ifndef CHARRNN_SERVE_RESCAN_H
#define CHARRNN_SERVE_RESCAN_H

#include "store.h"

typedef struct rescan rescan;

/* One scan now, on this thread (the first, before listening); a failure is
 * logged. */
void rescan_once(model_store *store, int force);

/* Starts the thread: a scan every poll_interval seconds (none if <= 0) and
 * one on each rescan_force(). NULL if the thread cannot start. */
rescan *rescan_start(model_store *store, double poll_interval);
/* Asks for a scan that reloads every model (SIGHUP); returns at once. */
void rescan_force(rescan *r);
/* Stops the thread, waiting up to wait_seconds for a scan in progress to
 * end. Returns 1 when the thread ended (r is freed), 0 when a scan was still
 * running (the thread and r are left to the process's exit, and the store
 * must not be freed). Accepts NULL (returns 1). */
int rescan_stop(rescan *r, double wait_seconds);

#endif
