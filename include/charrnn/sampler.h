/* Sampling text from a model, one character at a time.
 *
 * Determinism contract: the output is a pure function of (model bytes, prime,
 * length, temperature, top_k, top_p, stop, seed). Each stream owns its state
 * and RNG; the step kernel computes every stream's row with a fixed reduction
 * order, so a stream's bytes never depend on which other streams are stepped
 * with it (batch invariance) or on the thread that runs it.
 *
 * Protocol (what charrnn-sample and charrnn-serve both do):
 *   charrnn_stream_create(...)            validates params, encodes the prime
 *   while (!charrnn_stream_done(s)):
 *       charrnn_infer_step(model, n, streams)   advance one step, n >= 1 streams
 *       charrnn_stream_emit(s, buf)             bytes of a newly sampled char (0 while priming)
 * With a prime, every prime character is fed first and the first generated
 * character is sampled from the distribution after the last one. Without a
 * prime the first character is drawn uniformly from the vocabulary with the
 * stream's RNG (char-rnn's sample.lua does the same). */
#ifndef CHARRNN_SAMPLER_H
#define CHARRNN_SAMPLER_H

#include "charrnn/model.h"

#include <stddef.h>
#include <stdint.h>

#define CHARRNN_MAX_STOP 16
#define CHARRNN_MAX_STOP_LEN 256

typedef struct charrnn_sample_params {
    const char *prime; /* UTF-8, may be NULL */
    size_t prime_len;  /* bytes */
    size_t length;     /* characters to generate, >= 1 */
    float temperature; /* 0 = argmax; otherwise 0 < t <= 10 */
    uint64_t seed;
    int top_k;               /* 0 = off */
    float top_p;             /* (0, 1]; 1 = off */
    const char *const *stop; /* n_stop UTF-8 strings, each 1..CHARRNN_MAX_STOP_LEN bytes */
    size_t n_stop;
} charrnn_sample_params;

/* Defaults of DESIGN.md: length 200, temperature 1, top_k 0, top_p 1, seed 0. */
charrnn_sample_params charrnn_sample_defaults(void);

typedef enum charrnn_finish {
    CHARRNN_FINISH_NONE = 0,
    CHARRNN_FINISH_LENGTH,
    CHARRNN_FINISH_STOP
} charrnn_finish;

const char *charrnn_finish_name(charrnn_finish f); /* "length", "stop", "none" */

typedef struct charrnn_stream charrnn_stream;

/* Validates params against the model (prime characters outside the vocabulary
 * are named in err with CHARRNN_EVOCAB; invalid UTF-8 is CHARRNN_EFORMAT;
 * ranges are CHARRNN_ERANGE). The model must outlive the stream. Params'
 * strings are copied. */
int charrnn_stream_create(const charrnn_model *m, const charrnn_sample_params *p,
                          charrnn_stream **out, char *err, size_t errlen);
void charrnn_stream_free(charrnn_stream *s);

int charrnn_stream_done(const charrnn_stream *s);
charrnn_finish charrnn_stream_finish_reason(const charrnn_stream *s);
size_t charrnn_stream_prime_chars(const charrnn_stream *s);
size_t charrnn_stream_generated_chars(const charrnn_stream *s);

/* Advances n streams of the same model by one step (one token each). All
 * streams must be not done. Scratch is internal to each stream; the weights are
 * only read, so different threads may step disjoint sets of streams. */
void charrnn_infer_step(const charrnn_model *m, size_t n, charrnn_stream *const *streams);

/* After a step: if the step produced a character, writes its UTF-8 bytes into
 * out (at least 4 bytes) and returns the byte count; returns 0 while priming. */
int charrnn_stream_emit(charrnn_stream *s, char *out);

/* Convenience: runs one stream to completion, calling cb for every generated
 * chunk of UTF-8 (cb returning non-zero stops early). Returns CHARRNN_OK. */
int charrnn_sample_run(charrnn_stream *s, const charrnn_model *m,
                       int (*cb)(void *ctx, const char *bytes, size_t len), void *ctx);

/* The inference kernel: builds of the step's matrix-vector products for
 * several instruction sets ("avx512", "avx2", "portable"; x86-64 builds have
 * all three). Every one computes every dot product in the same order with
 * fused multiply-adds, so they give bit-identical text; only speed differs.
 * By default the fastest this CPU runs is used.
 *   charrnn_kernel_init: the one CHARRNN_KERNEL names (unset or "auto": the
 *     fastest); CHARRNN_EINVAL, with a message, for an unknown name or one
 *     this CPU cannot run. Programs call it at start-up to report a bad value;
 *     without it the first step picks silently (a bad value meaning auto).
 *   charrnn_kernel_select: the same for a given name (tests, benchmarks).
 *     Not while other threads step streams.
 *   charrnn_kernel_name: the one in use. */
int charrnn_kernel_init(char *err, size_t errlen);
int charrnn_kernel_select(const char *name, char *err, size_t errlen);
const char *charrnn_kernel_name(void);

#endif
