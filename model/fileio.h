/* Opening an input file the library reads whole (a training text, a
 * checkpoint): one place for the open, regular-file check and messages.
 * Private to libcharrnn. */
#ifndef CHARRNN_FILEIO_H
#define CHARRNN_FILEIO_H

#include <stddef.h>

/* Opens path read-only; on success *fd is open and *size is the file size.
 * A missing file is CHARRNN_ENOTFOUND, anything else unreadable or not a
 * regular file CHARRNN_EIO, with the path in the message. */
int charrnn_file_open(const char *path, int *fd, size_t *size, char *err, size_t errlen);

/* Splits path at its last '/': the directory goes into dir ("." without a
 * slash, "/" for a name in the root), and the name after the slash is
 * returned; NULL when the directory does not fit in dirlen bytes. */
const char *charrnn_path_split(const char *path, char *dir, size_t dirlen);

/* A process killed while writing a file atomically (temporary + rename)
 * leaves its temporary behind: NAME.tmp.SUFFIX next to NAME, SUFFIX being
 * mkstemp's six letters and digits or a process id. Removes, in dir, the
 * regular files of that form for which ours(NAME, ctx) is true, that were
 * last modified at least min_age_sec ago and on which no process holds a
 * flock (this library's writers lock their temporaries). Returns how many
 * were removed; errors are ignored (this is tidying, never required). */
int charrnn_remove_stale_tmp(const char *dir, int (*ours)(const char *name, const void *ctx),
                             const void *ctx, double min_age_sec);

#endif
