/* Status codes shared by every libcharrnn function.
 *
 * Contract: functions that can fail return an int status (CHARRNN_OK or a negative
 * charrnn_status) and, when given a non-NULL error buffer, write a one-line
 * human-readable message into it (always NUL-terminated, truncated to fit).
 * The library never prints, never exits and never aborts on bad input. */
#ifndef CHARRNN_STATUS_H
#define CHARRNN_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum charrnn_status {
    CHARRNN_OK = 0,
    CHARRNN_EINVAL = -1,   /* bad argument or value */
    CHARRNN_ENOMEM = -2,   /* allocation failed */
    CHARRNN_EIO = -3,      /* read/write/fsync/rename failed */
    CHARRNN_EFORMAT = -4,  /* malformed file or data (checkpoint, UTF-8) */
    CHARRNN_EVOCAB = -5,   /* character outside the vocabulary */
    CHARRNN_ERANGE = -6,   /* value out of range / too small / too large */
    CHARRNN_ENOTFOUND = -7 /* no such model / file */
} charrnn_status;

/* Recommended size of a caller's error buffer. */
#define CHARRNN_ERR_MAX 512

/* Static description of a status code; never NULL. */
const char *charrnn_strerror(int status);

/* Formats a message into err (if err != NULL && errlen > 0) and returns status.
 * A convenience for the library and its front ends. */
int charrnn_fail(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prepends "prefix: " to the message already in err (typically a path) and
 * returns status unchanged. */
int charrnn_err_prefix(char *err, size_t errlen, int status, const char *prefix);

#ifdef __cplusplus
}
#endif
#endif
