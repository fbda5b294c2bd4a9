/* Sampling text from a model, one character at a time.
 *
 * Determinism contract: the output is a pure function of (model bytes, prime,
 * length, temperature, top_k, top_p, min_p, logit_bias, the penalties, regex,
 * stop, seed). Each stream owns its state
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
 * stream's RNG (char-rnn's sample.lua does the same).
 *
 * Log-probabilities (logprob.h gives the definition) are recorded when asked:
 * after each step charrnn_stream_logprob returns the record of the character
 * the step produced, if any: a generated character as it is emitted (the
 * first one of an unprimed stream has none: it is drawn uniformly, not from
 * the model), or, with score_prime, a prime character once the model has
 * seen the ones before it (the first prime character has none). Scoring a
 * text is a stream with that text as prime, score_prime and length 0; it is
 * stepped like any other, so it batches with generations. */
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
    size_t length;     /* characters to generate, >= 1 (0 allowed with score_prime) */
    float temperature; /* 0 = argmax; otherwise 0 < t <= 10 */
    uint64_t seed;
    int top_k;               /* 0 = off */
    float top_p;             /* (0, 1]; 1 = off */
    const char *const *stop; /* n_stop UTF-8 strings, each 1..CHARRNN_MAX_STOP_LEN bytes */
    size_t n_stop;
    int logprobs;     /* 1 = record log-probabilities (charrnn_stream_logprob) */
    int top_logprobs; /* with logprobs: the most likely alternatives per character, 0..V */
    int score_prime;  /* with logprobs: record the prime's characters too; allows length 0 */
    /* logit_bias (OpenAI's): bias_val[i] is added to the logit of character
     * bias_id[i] before temperature, top_k and top_p; -100 all but bans it,
     * 100 all but forces it. Ids distinct, 0..V-1; values in [-100, 100].
     * Log-probabilities are reported without it. */
    const int *bias_id;
    const float *bias_val;
    size_t n_bias;
    /* min_p (llama.cpp's, vLLM's): after temperature, top_k and top_p, the
     * candidates whose probability is below min_p times the most likely
     * one's are dropped (the rest renormalised). [0, 1]; 0 = off. */
    float min_p;
    /* Penalties on what the text already holds: the last penalty_window
     * characters of the prime and the generated text (1..
     * CHARRNN_MAX_PENALTY_WINDOW, default 64). For every character c that
     * occurs count(c) > 0 times there, its logit l (after logit_bias) becomes
     *   l' = (l > 0 ? l / repetition_penalty : l * repetition_penalty)
     *        - presence_penalty - frequency_penalty * count(c)
     * (CTRL's / Hugging Face's repetition penalty, (0, 10], 1 = off; OpenAI's
     * presence and frequency penalties, [-2, 2], 0 = off), before temperature.
     * Like logit_bias they change what is drawn, never the log-probabilities
     * reported. The window is the stream's own (a pure function of the prime
     * and what the stream drew): batch invariant. */
    float repetition_penalty;
    float presence_penalty;
    float frequency_penalty;
    int penalty_window;
    /* regex (NULL = off): the generated text (never the prime) must match
     * this pattern whole (include/charrnn/regex.h gives the subset), 1..
     * CHARRNN_REGEX_MAX_LEN bytes of UTF-8. The stream compiles it against
     * its model's vocabulary. At each generated step the characters that
     * would leave no match possible are masked (as a ban, after logit_bias
     * and the penalties, before temperature, top_k, top_p and min_p; the
     * unprimed first character is drawn uniformly among the allowed ones);
     * when the text matches and no longer match is possible the stream
     * finishes with CHARRNN_FINISH_STOP. Log-probabilities are reported
     * without it. */
    const char *regex;
    /* Inside the model (charrnn/inspect.h): with length 0, the stream reads
     * the whole prime (at least one character) from a zero state, hands the
     * state of every layer after each character to this recorder and
     * finishes; nothing is sampled. The stream holds a reference while it
     * exists and is never resumed from a cached prefix. NULL = off. */
    struct charrnn_inspect *inspect;
} charrnn_sample_params;

#define CHARRNN_MAX_PENALTY_WINDOW 4096
#define CHARRNN_DEFAULT_PENALTY_WINDOW 64

/* Defaults: length 200, temperature 1, top_k 0, top_p 1, min_p 0, seed 0, no
 * log-probabilities, no logit bias, no penalties (repetition 1, presence and
 * frequency 0, window 64). */
charrnn_sample_params charrnn_sample_defaults(void);

/* The sampling parameters by name, so that a front end reports which one is
 * wrong from this value, never from a message's wording (charrnn-serve's
 * "param" of a 400, charrnn-sample's flag). */
typedef enum charrnn_sample_field {
    CHARRNN_SAMPLE_NONE = 0,
    CHARRNN_SAMPLE_PRIME,
    CHARRNN_SAMPLE_LENGTH,
    CHARRNN_SAMPLE_TEMPERATURE,
    CHARRNN_SAMPLE_SEED,
    CHARRNN_SAMPLE_TOP_K,
    CHARRNN_SAMPLE_TOP_P,
    CHARRNN_SAMPLE_STOP,
    CHARRNN_SAMPLE_LOGPROBS,   /* top_logprobs: 0..the vocabulary size */
    CHARRNN_SAMPLE_LOGIT_BIAS, /* each bias_val; ids 0..V-1, distinct */
    CHARRNN_SAMPLE_MIN_P,
    CHARRNN_SAMPLE_REPETITION_PENALTY,
    CHARRNN_SAMPLE_PRESENCE_PENALTY,
    CHARRNN_SAMPLE_FREQUENCY_PENALTY,
    CHARRNN_SAMPLE_PENALTY_WINDOW,
    CHARRNN_SAMPLE_REGEX /* its length; the stream compiles it (charrnn_stream_create_field) */
} charrnn_sample_field;

/* The field's API name: "prime", "length", "temperature", "seed", "top_k",
 * "top_p", "stop", "logprobs", "logit_bias", "min_p", "repetition_penalty",
 * "presence_penalty", "frequency_penalty", "penalty_window", "regex"; "" for
 * CHARRNN_SAMPLE_NONE.
 * Never NULL. */
const char *charrnn_sample_field_name(charrnn_sample_field f);

/* The limits of a numeric field (model/core/sample_params.c holds the one table):
 * lo <= v <= hi, or lo < v when lo_open; hi may be INFINITY; a whole number
 * when integer. For stop, v is the number of strings. */
typedef struct charrnn_sample_limit {
    double lo, hi;
    int lo_open;
    int integer;
} charrnn_sample_limit;

/* The limits of f; NULL for a field without them (prime, seed: any uint64). */
const charrnn_sample_limit *charrnn_sample_limit_of(charrnn_sample_field f);

/* Checks v, as the caller read it (before any conversion to the params'
 * types), against the limits of f. CHARRNN_OK, or CHARRNN_ERANGE with err
 * "<v> is out of range <range>" or "<v> is not an integer", without the
 * field's name: the caller names it as its users spell it ('top_k', --top-k).
 * CHARRNN_EINVAL when f has no limits. */
int charrnn_sample_check_number(charrnn_sample_field f, double v, char *err, size_t errlen);
/* A checked top_p (in (0, 1]) as the params' float. A value below the
 * smallest float (1e-300) becomes that float instead of 0, which would be
 * out of range: it means the same, the best character alone, as does any
 * top_p up to 1/V (the best character has at least 1/V of the mass). */
float charrnn_sample_top_p(double v);

/* Checks one stop string (NULL is refused): CHARRNN_OK, or CHARRNN_ERANGE with
 * err "a string of <n> bytes is out of range 1..CHARRNN_MAX_STOP_LEN", or
 * CHARRNN_EINVAL when it is not valid UTF-8 (err names the first bad byte):
 * only a valid stop is sure to match on character boundaries. */
int charrnn_sample_check_stop(const char *s, char *err, size_t errlen);

/* The one validation of a params struct (charrnn_stream_create runs it):
 * every numeric field against the table, the number of stop strings and each
 * string. The prime's characters need the model's vocabulary; the stream
 * checks those. Returns CHARRNN_OK with *field = CHARRNN_SAMPLE_NONE, or
 * CHARRNN_ERANGE with *field the first field found wrong and err
 * "<name>: <problem>". field may be NULL. */
int charrnn_sample_params_check(const charrnn_sample_params *p, charrnn_sample_field *field,
                                char *err, size_t errlen);

/* charrnn_sample_params_check, then the limits that depend on the model
 * (charrnn_stream_create runs this one): top_logprobs up to the vocabulary
 * size, logit_bias ids in 0..V-1. Same results and messages. */
int charrnn_sample_params_check_model(const charrnn_sample_params *p, const charrnn_model *m,
                                      charrnn_sample_field *field, char *err, size_t errlen);

typedef enum charrnn_finish {
    CHARRNN_FINISH_NONE = 0,
    CHARRNN_FINISH_LENGTH,
    CHARRNN_FINISH_STOP
} charrnn_finish;

const char *charrnn_finish_name(charrnn_finish f); /* "length", "stop", "none" */

typedef struct charrnn_stream charrnn_stream;

/* Validates params (charrnn_sample_params_check: CHARRNN_ERANGE), then the
 * prime against the model (characters outside the vocabulary are named in err
 * with CHARRNN_EVOCAB; invalid UTF-8 is CHARRNN_EFORMAT), then compiles the
 * regex over the model's vocabulary: "regex: does not compile: at byte N:
 * ..." (CHARRNN_EINVAL), "regex: too large: ..." naming the limit
 * (CHARRNN_ERANGE), "regex: cannot be satisfied ..." when no non-empty text
 * of the vocabulary's characters matches (CHARRNN_ERANGE). The model must
 * outlive the stream. Params' strings are copied. */
int charrnn_stream_create(const charrnn_model *m, const charrnn_sample_params *p,
                          charrnn_stream **out, char *err, size_t errlen);
/* The same, with *field (may be NULL) the field that is wrong:
 * CHARRNN_SAMPLE_PRIME for the prime's characters, CHARRNN_SAMPLE_REGEX for
 * the pattern, CHARRNN_SAMPLE_NONE on success or out of memory. */
int charrnn_stream_create_field(const charrnn_model *m, const charrnn_sample_params *p,
                                charrnn_stream **out, charrnn_sample_field *field, char *err,
                                size_t errlen);
void charrnn_stream_free(charrnn_stream *s);

int charrnn_stream_done(const charrnn_stream *s);
charrnn_finish charrnn_stream_finish_reason(const charrnn_stream *s);
size_t charrnn_stream_prime_chars(const charrnn_stream *s);
size_t charrnn_stream_generated_chars(const charrnn_stream *s);

/* Advances n streams by one step (one token each) through model m, reading
 * each of m's weight rows once for up to 16 streams. Every stream must have
 * been created from m (a batch is one model's: with a hot-reloaded model the
 * caller groups streams by version); otherwise returns CHARRNN_EINVAL and
 * steps none. A stream already done is left as it is (a prefill may have
 * ended it: charrnn_stream_prefill_scored). Scratch is internal to each
 * stream; the weights are only read, so different threads may step disjoint
 * sets of streams. Returns CHARRNN_OK. */
int charrnn_infer_step(const charrnn_model *m, size_t n, charrnn_stream *const *streams);

/* After a step: if the step produced a character, writes its UTF-8 bytes into
 * out (at least 4 bytes) and returns the byte count; returns 0 while priming. */
int charrnn_stream_emit(charrnn_stream *s, char *out);

/* One character's log-probability record. */
typedef struct charrnn_logprob {
    int token;         /* vocabulary index of the character */
    int is_prime;      /* 1: a prime character (score_prime), 0: a generated one */
    int has_logprob;   /* 0: no distribution to report (see above) */
    float logprob;     /* ln p(token | everything before it) */
    int n_top;         /* alternatives: top_logprobs, or 0 without has_logprob */
    const int *top_id; /* (n_top) most likely first, ties by lower index */
    const float *top_lp;
} charrnn_logprob;

/* After a step, with logprobs on: 1 and *out filled when the step produced a
 * character (emitted or scored), else 0; each record is returned once. The
 * arrays belong to the stream and stay valid until its next step. */
int charrnn_stream_logprob(charrnn_stream *s, charrnn_logprob *out);

/* Convenience: runs one stream to completion, calling cb for every generated
 * chunk of UTF-8 (cb returning non-zero stops early). Returns CHARRNN_OK, or
 * CHARRNN_EINVAL (nothing generated) if s was not created from m. */
int charrnn_sample_run(charrnn_stream *s, const charrnn_model *m,
                       int (*cb)(void *ctx, const char *bytes, size_t len), void *ctx);

/* Context: what a stream's state has read, saved and resumed.
 *
 * A stream's state after reading tokens t1..tk from the zero state depends
 * on those tokens and the model only, so it can be saved once and given to
 * any later stream whose prime starts with the same k characters: that
 * stream then reads only the rest. A snapshot holds the state (h, and c for
 * LSTM, of every layer) and the logits after the last token, the
 * distribution of the next character: charrnn_snapshot_floats(m) floats.
 * A resumed stream gives the same bytes, log-probabilities and state, bit
 * for bit, as one that read the whole prime itself (unit/prefill). */

/* Floats of one snapshot of m's streams. */
size_t charrnn_snapshot_floats(const charrnn_model *m);

/* The tokens the stream's state has read (the prime characters fed so far,
 * then each generated character fed): *n of them, NULL with *n = 0 before
 * the first step or when the stream could not keep them (out of memory).
 * Valid until the stream's next step. */
const uint16_t *charrnn_stream_context(const charrnn_stream *s, size_t *n);
/* The encoded prime (*n characters); valid for the stream's life. */
const uint16_t *charrnn_stream_prime_tokens(const charrnn_stream *s, size_t *n);

/* Writes the snapshot after the context into out. CHARRNN_OK, or
 * CHARRNN_EINVAL when the context is empty (nothing read yet). */
int charrnn_stream_snapshot(const charrnn_stream *s, float *out);

/* Before the stream's first step: takes snap, the snapshot after the first k
 * prime characters (1 <= k <= the prime's characters), as if the stream had
 * read them. With k the whole prime the first character is sampled now (as
 * the step that reads the prime's last character would) and the next step
 * emits it. CHARRNN_EINVAL, changing nothing, for a stream already stepped,
 * a k out of range, or one that scores its prime (score_prime: the prime's
 * records would be missing; see charrnn_stream_resume_scored). */
int charrnn_stream_resume(charrnn_stream *s, size_t k, const float *snap);
/* 1 when charrnn_stream_resume would take some k now, else 0. */
int charrnn_stream_resumable(const charrnn_stream *s);

/* The same for a stream that scores its prime (score_prime), whose records
 * of the first k characters the caller already has (it kept them with the
 * snapshot): takes the snapshot after k prime characters, 1 <= k < the
 * prime's characters, as if the stream had read them. The record of prime
 * character k (0-based: the first one the snapshot's logits predict) is then
 * ready (charrnn_stream_logprob), and the stream goes on scoring from there;
 * the records of characters 1..k-1 are the caller's to supply. A stream of
 * length 0 whose last character is k's is done at once. CHARRNN_EINVAL,
 * changing nothing, for a stream already stepped, one that does not score
 * its prime, or a k out of range. */
int charrnn_stream_resume_scored(charrnn_stream *s, size_t k, const float *snap);
/* 1 when charrnn_stream_resume_scored would take some k now, else 0. */
int charrnn_stream_resumable_scored(const charrnn_stream *s);

/* Prefill: reads up to max prime characters of a stream at once, layer by
 * layer (each layer's input products over blocks of positions together, its
 * recurrent products in order), leaving at least the prime's last character
 * to a step. The state, logits and everything after are the bits that as
 * many steps would give: every product row is the same fixed-order dot
 * product (the kernel is batch invariant) and the cell is the step's.
 * Returns the characters read: 0 when there is nothing to prefill (stepped
 * past the prime, one character left, a stream that scores its prime: see
 * charrnn_stream_prefill_scored) or no memory for the scratch (then stepping
 * works as before). */
size_t charrnn_stream_prefill(const charrnn_model *m, charrnn_stream *s, size_t max);

/* The inference kernel: builds of the step's matrix-vector products for
 * several instruction sets ("avx512", "avx2", "portable"; x86-64 builds have
 * all three). Every one computes every dot product in the same order with
 * fused multiply-adds, so they give bit-identical text; only speed differs.
 * By default the fastest this CPU runs is used. The choice also picks the
 * same instruction set's build of the trainer's GEMM (the same bits too).
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
