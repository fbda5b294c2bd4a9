/* The one generation path: what every handler that runs the model (POST
 * /sample, POST /score, POST /v1/completions) does between its parsed
 * request and its response, written once so that a control added to the
 * sampling parameters is added in one place.
 *
 *   gen_acquire   the model version (draining, default model, the store)
 *   gen_seed      a random seed when the request gave none
 *   gen_prepare   per stream: the parameters checked against the model, the
 *                 stream, its job (counted for the request's client)
 *   gen_admit     admission of a request's jobs, all or none
 *   gen_submit    gen_prepare and gen_admit of one stream
 *   gen_wait      a length-0 job's end (/score, /inspect), the client's
 *                 departure and the 503s of a job that did not run
 *
 * Each step either succeeds or has already responded (the API's error shape
 * through respond_fail) and returns -1 / NULL with *ret the handler's return
 * value. */
#ifndef CHARRNN_SERVE_GENERATE_H
#define CHARRNN_SERVE_GENERATE_H

#include "server.h"

/* The API's name of a sampling field, for the "param" of a 400 ("prompt" on
 * /v1 where /sample says "prime"). CHARRNN_SAMPLE_PRIME names the text whose
 * characters a stream reads. */
typedef const char *(*gen_field_name_fn)(charrnn_sample_field f);

/* The version of model (NULL: the default model) that the request runs on,
 * held in *ver (the caller releases it). Refuses while the server drains
 * (503), without a model and a default (400, param model), or when the model
 * is not loaded (404, param model). On success c->model and c->model_version
 * are set and the request is counted for the model. */
int gen_acquire(req_ctx *c, const char *model, const store_model **ver, enum MHD_Result *ret);

/* A fresh random seed into *seed unless has_seed; c->seed is set either way.
 * Without a random source: 500, param seed (the client can give one). */
int gen_seed(req_ctx *c, int has_seed, uint64_t *seed, enum MHD_Result *ret);

/* Checks p against the model of ver and creates the stream and its job
 * (which takes its own reference to ver), for the request's client: its API
 * key when keys are on, else its address as the connection limits count it
 * (an IPv4 address, an IPv6 /64). On error: 400 naming the field by name(),
 * 500 out of memory; NULL. */
gen_job *gen_prepare(req_ctx *c, const store_model *ver, const charrnn_sample_params *p,
                     gen_field_name_fn name, enum MHD_Result *ret);

/* Submits the n jobs of the request (engine_submit_all). On refusal: 429
 * rate_limit_error when the client would hold more than --max-client-share,
 * 503 when the slots and the queue are full; -1, and the jobs stay the
 * caller's to release. */
int gen_admit(req_ctx *c, gen_job *const *jobs, size_t n, enum MHD_Result *ret);

/* gen_prepare and gen_admit of one stream; NULL (nothing left to release)
 * on error. */
gen_job *gen_submit(req_ctx *c, const store_model *ver, const charrnn_sample_params *p,
                    gen_field_name_fn name, enum MHD_Result *ret);

/* Waits for job (submitted as c->job) to end, polling the client: when it
 * has gone the job is cancelled (finish "cancelled", *ret MHD_NO). A job
 * that timed out in the queue or while running, or was refused at shutdown,
 * is a 503 whose message names what (e.g. "scoring"); any other end but
 * JOB_FINISHED answers nothing (*ret MHD_NO). Returns 0 with *res filled
 * when the job finished, else -1 with the response sent. */
int gen_wait(req_ctx *c, gen_job *job, const char *what, job_result *res, enum MHD_Result *ret);

#endif
