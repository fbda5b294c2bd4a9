/* Files as the project reads and writes them: one whole-file reader, one
 * atomic writer, and the tidying of temporaries a killed writer left behind.
 *
 * Reading never blocks on a special file: the path is opened non-blocking, its
 * type is checked (fstat) before any read, and anything but a regular file (a
 * FIFO, socket, device or directory) is refused. A file that shrinks while it
 * is read is an error, never a silently shorter buffer.
 *
 * Writing is atomic: a temporary NAME.tmp.XXXXXX (mkstemp: an unpredictable
 * name, created exclusively, never through a symlink) next to NAME, locked
 * with flock while it is written, fsync, rename over NAME, fsync of the
 * directory. A reader sees the old file or the new one, never a partial one. */
#ifndef CHARRNN_FILEIO_H
#define CHARRNN_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

/* Flags of charrnn_file_open and charrnn_file_read. */
#define CHARRNN_FILE_NOFOLLOW 1 /* refuse a symlink as the last component (O_NOFOLLOW) */

/* Opens path for reading; on success *fd is open (close-on-exec) and *st
 * holds its fstat, a regular file's. A missing file is CHARRNN_ENOTFOUND
 * ("cannot open PATH: ..."), anything else unopenable or not a regular file
 * CHARRNN_EIO ("PATH is not a regular file"). On error *fd is -1. */
int charrnn_file_open(const char *path, int flags, int *fd, struct stat *st, char *err,
                      size_t errlen);

/* Reads a whole regular file: *buf (caller frees; at least one byte is
 * allocated, so an empty file gives a non-NULL buffer) and *len. st, if not
 * NULL, receives the fstat of the file that was read. Errors as
 * charrnn_file_open, CHARRNN_ENOMEM, or CHARRNN_EIO for a failed or short
 * read; on error *buf is NULL and nothing is allocated. */
int charrnn_file_read(const char *path, int flags, uint8_t **buf, size_t *len, struct stat *st,
                      char *err, size_t errlen);

/* Writes path atomically (see above) with mode 0644. produce(f, ctx) writes
 * the content into f and returns 0, or non-zero to abandon the file (then
 * CHARRNN_EIO). Any failure, a failed directory fsync included, returns
 * CHARRNN_EIO with a message naming path; then the previous file at path is
 * untouched (except after a failed directory fsync, which comes after the
 * rename: the new file is in place but may not survive a crash) and the
 * temporary is removed. */
int charrnn_file_write_atomic(const char *path, int (*produce)(FILE *f, void *ctx), void *ctx,
                              char *err, size_t errlen);

/* Splits path at its last '/': the directory goes into dir ("." without a
 * slash, "/" for a name in the root), and the name after the slash is
 * returned; NULL when the directory does not fit in dirlen bytes. */
const char *charrnn_path_split(const char *path, char *dir, size_t dirlen);

/* A process killed while writing leaves its temporary NAME.tmp.XXXXXX behind.
 * Removes, in dir, the regular files of that form (six letters and digits
 * after ".tmp.") for which ours(NAME, ctx) is true, that were last modified
 * at least min_age_sec ago and on which no process holds a flock. Returns how
 * many were removed; errors are ignored (this is tidying, never required). */
int charrnn_remove_stale_tmp(const char *dir, int (*ours)(const char *name, const void *ctx),
                             const void *ctx, double min_age_sec);

#endif
