/* Log-probabilities of the model's own next-character distribution.
 *
 * The one definition used everywhere (charrnn-serve's /sample, /v1, /score
 * and the playground): the natural logarithm of softmax(logits), where the
 * logits are the decoder's output for the next character at temperature 1,
 * before logit_bias, top_k and top_p (what vLLM reports by default). Sampling
 * settings change which character is drawn, never the numbers reported.
 *
 * Computed in double precision with a fixed order (the maximum, then the sum
 * of exp(logit - max) in vocabulary order) and rounded to float, so the
 * numbers are a pure function of the logits, which the step computes
 * batch-invariantly: the same bits alone or batched, in every kernel build. */
#ifndef CHARRNN_LOGPROB_H
#define CHARRNN_LOGPROB_H

#include <stddef.h>

/* log(sum_v exp(logits[v])), V >= 1. */
double charrnn_logsumexp(const float *logits, int V);

/* ln p(v) = logits[v] - lse, rounded to float (lse from charrnn_logsumexp). */
float charrnn_logprob_of(const float *logits, double lse, int v);

/* The k largest logits (0 <= k <= V), largest first, ties broken by the
 * lower vocabulary index (a strict order, so the result does not depend on
 * how it is found): their indices into top_id (k entries). O(V log k) time,
 * no memory beyond top_id (a size-k heap lives there while selecting). The
 * sampler's top_k candidates and the reported alternatives both come from it. */
void charrnn_top_k(const float *logits, int V, int k, int *top_id);

/* charrnn_top_k, and the log-probabilities of those k characters into top_lp. */
void charrnn_top_logprobs(const float *logits, int V, double lse, int k, int *top_id,
                          float *top_lp);

#endif
