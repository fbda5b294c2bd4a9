/* Structured logs: one JSON object per line on stderr. */
#ifndef CHARRNN_SERVE_LOG_H
#define CHARRNN_SERVE_LOG_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Adds "ts" (UTC, RFC 3339 with milliseconds), "level" and "msg" to fields
 * (created if NULL), writes it as one line and frees it. */
void log_json(const char *level, const char *msg, cJSON *fields);
/* Shorthand for a message without fields, printf-style. */
void log_msg(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sends every line (with its newline, len bytes) to sink instead of stderr;
 * NULL restores stderr. For the fuzz harness that checks each line is UTF-8
 * JSON; set it before any thread logs. */
typedef void (*log_sink_fn)(const char *line, size_t len);
void log_set_sink(log_sink_fn sink);

#endif
