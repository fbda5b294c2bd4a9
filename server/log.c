/* One JSON object per line on stderr, written whole so lines never interleave. */
#include "log.h"

#include "echo.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static log_sink_fn sink;

void log_set_sink(log_sink_fn fn)
{
    sink = fn;
}

/* Every string of o (recursively) that is not valid UTF-8 replaced by its
 * echo_text: a line is JSON, which must be UTF-8, whatever bytes a field
 * holds. Callers echo client strings already; this keeps the guarantee for
 * any field that slips through. */
static void make_utf8(cJSON *o)
{
    for (cJSON *it = o ? o->child : NULL; it; it = it->next) {
        if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            make_utf8(it);
            continue;
        }
        size_t len = cJSON_IsString(it) ? strlen(it->valuestring) : 0;
        if (!cJSON_IsString(it) || utf8_valid(it->valuestring, len))
            continue;
        char *s = malloc(4 * len + 1);
        cJSON *fixed =
            s ? cJSON_CreateString(echo_text(s, 4 * len + 1, it->valuestring, len)) : NULL;
        free(s);
        if (fixed) { /* the key moves over with its value */
            fixed->string = it->string;
            it->string = NULL;
            cJSON_ReplaceItemViaPointer(o, it, fixed);
            it = fixed;
        } else
            cJSON_SetValuestring(it, ""); /* out of memory: drop the text, keep the line */
    }
}

void log_json(const char *level, const char *msg, cJSON *fields)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        cJSON_Delete(fields);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000L);
    cJSON_AddStringToObject(o, "ts", when);
    cJSON_AddStringToObject(o, "level", level);
    cJSON_AddStringToObject(o, "msg", msg);
    if (fields) {
        /* Move the fields over in order. */
        while (fields->child) {
            cJSON *it = cJSON_DetachItemViaPointer(fields, fields->child);
            cJSON_AddItemToObject(o, it->string, it);
        }
        cJSON_Delete(fields);
    }
    make_utf8(o);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line)
        return;
    size_t len = strlen(line);
    line[len] = '\n'; /* replaces the terminator; write exactly len + 1 bytes */
    if (sink) {
        sink(line, len + 1);
        free(line);
        return;
    }
    flockfile(stderr);
    fwrite(line, 1, len + 1, stderr);
    fflush(stderr);
    funlockfile(stderr);
    free(line);
}

void log_msg(const char *level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_json(level, buf, NULL);
}
