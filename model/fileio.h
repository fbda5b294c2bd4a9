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

#endif
