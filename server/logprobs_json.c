/* Writing log-probability records as JSON (logprobs_json.h). */
#include "logprobs_json.h"

#include <math.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cJSON *json_float(float v)
{
    if (!isfinite(v)) /* a loaded model cannot produce one (CHARRNN_MAX_ACTIVATION): a net */
        return cJSON_CreateNull();
    char b[32];
    snprintf(b, sizeof b, "%.9g", (double)v);
    return cJSON_CreateRaw(b);
}

const char *vocab_char(const charrnn_vocab *v, int id, char *out)
{
    int n = id >= 0 ? charrnn_utf8_encode(charrnn_vocab_codepoint(v, (size_t)id), out) : 0;
    out[n] = '\0';
    return out;
}

cJSON *logprobs_native(const charrnn_vocab *v, const job_rec *r, const int *top_id,
                       const float *top_lp, int k, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    char ch[8];
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "char", vocab_char(v, r[i].token, ch));
        cJSON_AddItemToObject(o, "logprob", r[i].has_lp ? json_float(r[i].lp) : cJSON_CreateNull());
        if (k <= 0)
            continue;
        cJSON *top = cJSON_AddArrayToObject(o, "top");
        for (int t = 0; r[i].has_lp && t < k; t++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "char", vocab_char(v, top_id[i * (size_t)k + t], ch));
            cJSON_AddItemToObject(e, "logprob", json_float(top_lp[i * (size_t)k + t]));
            cJSON_AddItemToArray(top, e);
        }
    }
    return arr;
}

int job_records_get(engine *e, gen_job *j, const job_result *r, job_records *out)
{
    memset(out, 0, sizeof *out);
    size_t n = r->n_records, k = (size_t)r->top_k;
    out->k = r->top_k;
    out->rec = malloc((n ? n : 1) * sizeof *out->rec);
    out->top_id = malloc((n * k > 0 ? n * k : 1) * sizeof *out->top_id);
    out->top_lp = malloc((n * k > 0 ? n * k : 1) * sizeof *out->top_lp);
    if (!out->rec || !out->top_id || !out->top_lp) {
        job_records_free(out);
        return -1;
    }
    int ended = 0;
    out->n = engine_job_records(e, j, 0, n, out->rec, out->top_id, out->top_lp, 0, &ended);
    return 0;
}

void job_records_free(job_records *x)
{
    free(x->rec), free(x->top_id), free(x->top_lp);
    memset(x, 0, sizeof *x);
}

double records_mean_logprob(const job_rec *rec, size_t n)
{
    double sum = 0.0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (rec[i].has_lp && !rec[i].is_prime)
            sum += rec[i].lp, m++;
    return m ? sum / (double)m : -INFINITY;
}
