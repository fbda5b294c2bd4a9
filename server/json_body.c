/* Strict JSON request bodies (json_body.h).
 *
 * cJSON checks the syntax and builds the tree; numbers in it are doubles, so
 * the seed (a full uint64) is read from its source text, found by a small
 * scanner over the already-validated top-level members. */
#include "json_body.h"

#include "charrnn/status.h"
#include "echo.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

void api_failv(api_error *e, unsigned status, const char *type, const char *param, const char *fmt,
               va_list ap)
{
    e->status = status;
    e->type = type;
    echo_str(e->param, sizeof e->param, param);
    /* Formatted whole, then echoed: client bytes in the message become valid
     * UTF-8 and the cut to the buffer falls between characters. */
    char buf[2 * sizeof e->message], *msg = buf;
    va_list aq;
    va_copy(aq, ap);
    int len = vsnprintf(buf, sizeof buf, fmt, ap);
    if (len >= (int)sizeof buf && (msg = malloc((size_t)len + 1)) != NULL)
        vsnprintf(msg, (size_t)len + 1, fmt, aq);
    va_end(aq);
    if (!msg)
        msg = buf, len = (int)strlen(buf);
    echo_text(e->message, sizeof e->message, msg, len > 0 ? (size_t)len : 0);
    if (msg != buf)
        free(msg);
}

int api_fail(api_error *e, unsigned status, const char *type, const char *param, const char *fmt,
             ...)
{
    va_list ap;
    va_start(ap, fmt);
    api_failv(e, status, type, param, fmt, ap);
    va_end(ap);
    return -1;
}

/* Whitespace as cJSON skips it: every byte up to 0x20 (not only JSON's four).
 * The scanner must see the members cJSON sees, or a check on the source text
 * (the \u0000 escape, the seed's digits) looks at the wrong member. */
static int is_ws(char c)
{
    return (unsigned char)c <= 0x20;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\')
            p++;
    return p < end ? p + 1 : end;
}

static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return end;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return end;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && !is_ws(*p))
        p++;
    return p;
}

size_t request_members(const char *s, size_t len, request_member *out, size_t max)
{
    const char *p = s, *end = s + len;
    size_t n = 0;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
        p += 3; /* cJSON skips a UTF-8 byte order mark, before any whitespace */
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return 0;
    p++;
    while (n < max) {
        p = skip_ws(p, end);
        if (p >= end || *p != '"')
            break;
        const char *k = p;
        p = skip_string(p, end);
        out[n].key = (span){k, (size_t)(p - k)};
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            break;
        p = skip_ws(p + 1, end);
        const char *v = p;
        p = skip_value(p, end);
        out[n].value = (span){v, (size_t)(p - v)};
        n++;
        p = skip_ws(p, end);
        if (p >= end || *p != ',')
            break;
        p++;
    }
    return n;
}

/* 1 if the source text of a value has a \u0000 escape: cJSON would silently
 * cut the string there. */
int json_has_nul(span v)
{
    for (size_t i = 0; i + 1 < v.n; i++) {
        if (v.p[i] != '\\')
            continue;
        if (v.p[i + 1] == 'u' && i + 5 < v.n && !strncmp(v.p + i + 2, "0000", 4))
            return 1;
        i++; /* skip the escaped character */
    }
    return 0;
}

/* The offset of the first raw control character (< 0x20) inside a string of
 * the JSON text s[0..n), or n if there is none. For text cJSON has parsed,
 * its strings are exactly the quoted runs, escapes skipped as cJSON skips
 * them. RFC 8259 forbids such bytes; cJSON keeps them, and cuts the string
 * at a NUL, so "tiny<NUL>-other" would read as the model "tiny". */
static size_t raw_control_at(const char *s, size_t n)
{
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!in_string)
            in_string = c == '"';
        else if (c == '"')
            in_string = 0;
        else if (c == '\\' && i + 1 < n && (unsigned char)s[i + 1] >= 0x20)
            i++; /* the escaped character */
        else if (c < 0x20)
            return i;
    }
    return n;
}

static int span_has(span v, const char *at)
{
    return at >= v.p && at < v.p + v.n;
}

size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* An integral JSON number in [lo, hi]. */
int json_get_int(const cJSON *v, const char *name, double lo, double hi, double *out,
                 api_error *err)
{
    if (!cJSON_IsNumber(v))
        return api_fail(err, 400, INVALID, name, "'%s' must be an integer", name);
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return api_fail(err, 400, INVALID, name, "'%s' must be an integer", name);
    if (d < lo || d > hi)
        return api_fail(err, 400, INVALID, name, "'%s' must be in %.0f..%.0f, got %.17g", name, lo,
                        hi, d);
    *out = d;
    return 0;
}

/* A sampling number, checked against the library's table of limits (the
 * param of an error is the field's name from that table). */
int json_get_sample_number(const cJSON *v, charrnn_sample_field f, double *out, api_error *err)
{
    const char *name = charrnn_sample_field_name(f);
    if (!cJSON_IsNumber(v))
        return api_fail(err, 400, INVALID, name, "'%s' must be %s", name,
                        charrnn_sample_limit_of(f)->integer ? "an integer" : "a number");
    char why[CHARRNN_ERR_MAX];
    if (charrnn_sample_check_number(f, v->valuedouble, why, sizeof why))
        return api_fail(err, 400, INVALID, name, "'%s': %s", name, why);
    *out = v->valuedouble;
    return 0;
}

int json_get_seed(const cJSON *v, span src, uint64_t *out, api_error *err)
{
    const char *p = src.p;
    size_t n = src.n;
    if (cJSON_IsString(v)) {
        p = v->valuestring;
        n = strlen(p);
    } else if (!cJSON_IsNumber(v)) {
        return api_fail(err, 400, INVALID, "seed",
                        "'seed' must be an integer 0..18446744073709551615");
    }
    char buf[32];
    if (n == 0 || n > 20)
        goto bad;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            goto bad;
    memcpy(buf, p, n);
    buf[n] = '\0';
    errno = 0;
    unsigned long long u = strtoull(buf, NULL, 10);
    if (errno == ERANGE)
        goto bad;
    *out = (uint64_t)u;
    return 0;
bad:
    return api_fail(err, 400, INVALID, "seed", "'seed' must be an integer 0..18446744073709551615");
}

int json_object_parse(const char *body, size_t len, const char *const *fields, size_t nfields,
                      json_member_fn fn, void *ctx, api_error *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        return api_fail(err, 400, INVALID, NULL, "the body is not valid JSON (error at byte %zu)",
                        at);
    }
    int rc = 0;
    request_member *src = NULL;
    const char *rest = skip_ws(end, body + len);
    if (rest < body + len) {
        rc = api_fail(err, 400, INVALID, NULL,
                      "the body is not valid JSON (trailing data at byte %zu)",
                      (size_t)(rest - body));
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = api_fail(err, 400, INVALID, NULL, "the body must be a JSON object");
        goto out;
    }
    if (nfields > 64 || !(src = calloc(nfields + 1, sizeof *src))) {
        rc = api_fail(err, 500, "server_error", NULL, "out of memory");
        goto out;
    }
    size_t nsrc = request_members(body, len, src, nfields + 1);
    size_t parsed = (size_t)(end - body), ctl = raw_control_at(body, parsed);
    size_t i = 0;
    uint64_t seen = 0;
    char shown[72];
    for (const cJSON *v = root->child; v; v = v->next, i++) {
        if (ctl < parsed && i < nsrc &&
            (span_has(src[i].key, body + ctl) || span_has(src[i].value, body + ctl))) {
            rc = api_fail(err, 400, INVALID, v->string,
                          "'%s' has a raw control character (byte 0x%02x) inside a string: "
                          "JSON requires it escaped",
                          echo_str(shown, sizeof shown, v->string), (unsigned char)body[ctl]);
            goto out;
        }
        size_t f = 0;
        while (f < nfields && strcmp(v->string, fields[f]))
            f++;
        if (f == nfields) {
            char list[512] = "";
            size_t used = 0;
            for (size_t k = 0; k < nfields && used < sizeof list; k++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "",
                                         fields[k]);
            rc = api_fail(err, 400, INVALID, v->string, "unknown field '%s' (fields: %s)",
                          echo_str(shown, sizeof shown, v->string), list);
            goto out;
        }
        if (seen & (1ull << f)) {
            rc = api_fail(err, 400, INVALID, v->string, "field '%s' appears twice",
                          echo_str(shown, sizeof shown, v->string));
            goto out;
        }
        seen |= 1ull << f;
        if (cJSON_IsNull(v))
            continue;
        span sv = i < nsrc ? src[i].value : (span){"", 0};
        if ((rc = fn(ctx, v, sv, err)) != 0)
            goto out;
    }
    if (ctl < parsed) /* in no member the scanner found: never, the fuzz harness checks */
        rc = api_fail(err, 400, INVALID, NULL,
                      "a raw control character (byte 0x%02x) inside a string: JSON requires it "
                      "escaped",
                      (unsigned char)body[ctl]);
out:
    free(src);
    cJSON_Delete(root);
    return rc;
}

int logprob_budget_check(const serve_config *cfg, size_t chars, int k, const char *param,
                         api_error *err)
{
    double entries = (double)chars * (1.0 + (double)k);
    if (entries <= (double)cfg->max_logprob_entries)
        return 0;
    return api_fail(err, 400, INVALID, param,
                    "%zu characters with %d alternatives each are %.0f log-probabilities, more "
                    "than the %ld one response may carry (--max-logprob-entries): ask for fewer "
                    "characters or alternatives",
                    chars, k, entries, cfg->max_logprob_entries);
}
