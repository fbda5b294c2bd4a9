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

/* The k most likely characters (0 <= k <= V), most likely first, ties broken
 * by the lower vocabulary index: their indices into top_id and their
 * log-probabilities into top_lp (k entries each). O(V log k) time, no memory
 * beyond the outputs (a size-k heap lives in top_id while selecting). */
void charrnn_top_logprobs(const float *logits, int V, double lse, int k, int *top_id,
                          float *top_lp);

#endif
