/* POST /inspect bodies (inspect_request.h). */
#include "inspect_request.h"

#include "score_request.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

static const char *const inspect_fields[] = {"model", "text",     "layer", "units",     "state",
                                             "find",  "decimals", "match", "saturation"};

static int parse_units(inspect_request *r, const cJSON *v, api_error *err)
{
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1 || n > CHARRNN_INSPECT_MAX_UNITS)
        return api_fail(err, 400, INVALID, "units",
                        "'units' must be an array of 1..%d unit indices",
                        CHARRNN_INSPECT_MAX_UNITS);
    const cJSON *u;
    cJSON_ArrayForEach(u, v)
    {
        double d;
        if (json_get_int(u, "units", 0, 65535, &d, err))
            return -1;
        r->units[r->n_units++] = (int)d;
    }
    return 0;
}

static int parse_find(inspect_request *r, const cJSON *v, api_error *err)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1)
        return api_fail(err, 400, INVALID, "find",
                        "'find' must be a non-empty array of features (line_position, "
                        "word_position, quote, bracket_depth, indent)");
    const cJSON *f;
    cJSON_ArrayForEach(f, v)
    {
        int k = cJSON_IsString(f) ? charrnn_feature_parse(f->valuestring) : -1;
        if (k < 0)
            return api_fail(err, 400, INVALID, "find",
                            "unknown feature%s%s%s: the features are line_position, "
                            "word_position, quote, bracket_depth and indent",
                            cJSON_IsString(f) ? " '" : "", cJSON_IsString(f) ? f->valuestring : "",
                            cJSON_IsString(f) ? "'" : "");
        r->find |= 1u << k;
    }
    return 0;
}

static int parse_match(inspect_request *r, const cJSON *v, api_error *err)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "start");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(v, "end");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "threshold");
    if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) != 3 || !s || !e || !cJSON_IsNumber(t) ||
        !isfinite(t->valuedouble))
        return api_fail(err, 400, INVALID, "match",
                        "'match' must be {\"start\": i, \"end\": j, \"threshold\": x}: the "
                        "characters [start, end) and a value");
    if (json_get_int(s, "match", 0, 1e9, &r->match_start, err) ||
        json_get_int(e, "match", 1, 1e9, &r->match_end, err))
        return -1;
    if (r->match_end <= r->match_start)
        return api_fail(err, 400, INVALID, "match", "'match': end must be above start");
    r->match_threshold = t->valuedouble;
    r->has_match = 1;
    return 0;
}

static int inspect_member(void *ctx, const cJSON *v, span src, api_error *err)
{
    inspect_request *r = ctx;
    const char *k = v->string;
    double d;
    if (!strcmp(k, "model"))
        return score_request_model(v, &r->model, err);
    if (!strcmp(k, "text"))
        return score_request_text(v, src, r->cfg, 1, 413, " (--max-score-chars)", &r->text,
                                  &r->text_len, err);
    if (!strcmp(k, "layer")) {
        if (json_get_int(v, k, 1, 1024, &d, err))
            return -1;
        r->layer = (int)d;
        return 0;
    }
    if (!strcmp(k, "units"))
        return parse_units(r, v, err);
    if (!strcmp(k, "state")) {
        r->state = cJSON_IsString(v) ? charrnn_state_parse(v->valuestring) : -1;
        if (r->state < 0)
            return api_fail(err, 400, INVALID, k,
                            "'state' must be \"cell\", \"hidden\", \"input_gate\", "
                            "\"forget_gate\", \"cell_gate\" or \"output_gate\"");
        return 0;
    }
    if (!strcmp(k, "saturation")) {
        if (!cJSON_IsBool(v))
            return api_fail(err, 400, INVALID, k, "'saturation' must be true or false");
        r->saturation = cJSON_IsTrue(v);
        return 0;
    }
    if (!strcmp(k, "find"))
        return parse_find(r, v, err);
    if (!strcmp(k, "match"))
        return parse_match(r, v, err);
    if (json_get_int(v, k, 0, 9, &d, err)) /* decimals */
        return -1;
    r->decimals = (int)d;
    return 0;
}

/* The request's shape once every member is read: which mode, and its
 * required fields. */
static int inspect_check(inspect_request *q, api_error *err)
{
    if (!q->text)
        return api_fail(err, 400, INVALID, "text", "'text' is required");
    if (q->find && (q->n_units || q->has_match))
        return api_fail(err, 400, INVALID, "find",
                        "'find' searches every unit: give it without 'units' and 'match'");
    if (!q->find && !q->n_units && !q->has_match && !q->saturation)
        return api_fail(err, 400, INVALID, "units",
                        "give 'units' (with 'layer'), 'find', 'match' (with 'layer') or "
                        "'saturation'");
    if ((q->n_units || q->has_match) && !q->layer)
        return api_fail(err, 400, INVALID, "layer", "'layer' is required with 'units' or 'match'");
    if (q->has_match && q->match_end > (double)utf8_chars(q->text, q->text_len))
        return api_fail(err, 400, INVALID, "match",
                        "'match': end is past the text's %zu characters",
                        utf8_chars(q->text, q->text_len));
    return 0;
}

void inspect_request_clear(inspect_request *r)
{
    free(r->model);
    free(r->text);
    memset(r, 0, sizeof *r);
}

int inspect_request_parse(const char *body, size_t len, const serve_config *cfg, inspect_request *r,
                          api_error *err)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg, r->state = -1, r->decimals = 4;
    int rc =
        json_object_parse(body, len, inspect_fields, sizeof inspect_fields / sizeof *inspect_fields,
                          inspect_member, r, err);
    if (!rc)
        rc = inspect_check(r, err);
    if (rc)
        inspect_request_clear(r);
    return rc;
}
