/* Status codes and error-message formatting. */
#include "charrnn/status.h"

#include <stdarg.h>
#include <stdio.h>

const char *charrnn_strerror(int status)
{
    switch (status) {
    case CHARRNN_OK: return "success";
    case CHARRNN_EINVAL: return "invalid argument";
    case CHARRNN_ENOMEM: return "out of memory";
    case CHARRNN_EIO: return "input/output error";
    case CHARRNN_EFORMAT: return "malformed data";
    case CHARRNN_EVOCAB: return "character outside the vocabulary";
    case CHARRNN_ERANGE: return "value out of range";
    case CHARRNN_ENOTFOUND: return "not found";
    default: return "unknown error";
    }
}

int charrnn_fail(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

int charrnn_err_prefix(char *err, size_t errlen, int status, const char *prefix)
{
    if (err && errlen > 0) {
        char tmp[CHARRNN_ERR_MAX];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, errlen, "%s: %s", prefix, tmp);
    }
    return status;
}
