/* JSON of log-probability records (engine.h job_rec), shared by /sample,
 * /score and /v1/completions so the numbers are written one way everywhere:
 * floats with 9 significant digits (they round-trip exactly), null for a
 * non-finite one. */
#ifndef CHARRNN_SERVE_LOGPROBS_JSON_H
#define CHARRNN_SERVE_LOGPROBS_JSON_H

#include "charrnn/vocab.h"
#include "engine.h"

#include <cjson/cJSON.h>

/* A float as a JSON number; null for NaN and +-Inf, which JSON cannot hold
 * (as cJSON writes a non-finite double). */
cJSON *json_float(float v);
/* The UTF-8 of vocabulary entry id into out (at least 5 bytes); "" for -1. */
const char *vocab_char(const charrnn_vocab *v, int id, char *out);

/* The native form, one object per record:
 *   {"char": "e", "logprob": -0.25 | null, "top": [{"char": "a", "logprob": -1.5}, ...]}
 * ("top" only when k > 0; top_id/top_lp hold k entries per record). */
cJSON *logprobs_native(const charrnn_vocab *v, const job_rec *r, const int *top_id,
                       const float *top_lp, int k, size_t n);

/* A job's records [from, from + n) with their alternatives, copied out of the
 * engine once the job has ended. Returns 0, or -1 when out of memory. */
typedef struct job_records {
    job_rec *rec;
    int *top_id;
    float *top_lp;
    size_t n;
    int k;
} job_records;
int job_records_get(engine *e, gen_job *j, const job_result *r, job_records *out);
void job_records_free(job_records *x);

/* How best_of ranks candidates (/sample and /v1): the mean log-probability
 * per generated character of n records, skipping prime records and those
 * without a distribution; -INFINITY when none has one. */
double records_mean_logprob(const job_rec *rec, size_t n);

#endif
