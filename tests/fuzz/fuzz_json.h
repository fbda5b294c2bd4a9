/* The output checks shared by the harnesses of the daemon's code (fuzz_request,
 * fuzz_completion, fuzz_http): every response body and log line the daemon
 * writes is valid UTF-8 and, where it is JSON, parses as JSON. Failures print
 * what was wrong and abort. */
#ifndef CHARRNN_FUZZ_JSON_H
#define CHARRNN_FUZZ_JSON_H

#include "echo.h"
#include "json_body.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void fuzz_fail(const char *what, const char *s, size_t n)
{
    fprintf(stderr, "fuzz: %s: %.*s\n", what, (int)(n > 2000 ? 2000 : n), s);
    abort();
}

/* s[0..n) is valid UTF-8 and, when json, one JSON value. */
static inline void fuzz_check_text(const char *s, size_t n, int json, const char *what)
{
    if (!utf8_valid(s, n))
        fuzz_fail(what, s, n);
    if (json) {
        cJSON *o = cJSON_ParseWithLength(s, n);
        if (!o)
            fuzz_fail(what, s, n);
        cJSON_Delete(o);
    }
}

/* A rejected request: a 4xx with a type and a message, whose message and
 * param (echoing client bytes) make a valid UTF-8 JSON body as the daemon's
 * error responses carry them. */
static inline void fuzz_check_error(const api_error *e)
{
    if (e->status < 400 || e->status > 500 || !e->message[0] || !e->type)
        abort();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", e->message);
    cJSON_AddStringToObject(o, "param", e->param);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        abort();
    fuzz_check_text(s, strlen(s), 1, "error body not UTF-8 JSON");
    free(s);
}

#endif
