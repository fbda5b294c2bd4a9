/* Structured logs: one JSON object per line on stderr. */
#ifndef CHARRNN_SERVE_LOG_H
#define CHARRNN_SERVE_LOG_H

#include <cjson/cJSON.h>

/* Adds "ts" (UTC, RFC 3339 with milliseconds), "level" and "msg" to fields
 * (created if NULL), writes it as one line and frees it. */
void log_json(const char *level, const char *msg, cJSON *fields);
/* Shorthand for a message without fields, printf-style. */
void log_msg(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
