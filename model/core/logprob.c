/* Log-softmax and top-k selection over one step's logits (logprob.h). */
#include "charrnn/logprob.h"

#include <math.h>

double charrnn_logsumexp(const float *logits, int V)
{
    double mx = logits[0];
    for (int v = 1; v < V; v++)
        mx = logits[v] > mx ? logits[v] : mx;
    double sum = 0.0;
    for (int v = 0; v < V; v++)
        sum += exp((double)logits[v] - mx);
    return mx + log(sum);
}

float charrnn_logprob_of(const float *logits, double lse, int v)
{
    return (float)((double)logits[v] - lse);
}

/* 1 if a ranks before b: larger logit, or the same logit and a lower index. */
static int before(const float *lg, int a, int b)
{
    return lg[a] > lg[b] || (lg[a] == lg[b] && a < b);
}

/* Restores the heap below i; the root is the entry ranked last. */
static void sift_down(const float *lg, int *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && before(lg, h[w], h[l]))
            w = l;
        if (r < n && before(lg, h[w], h[r]))
            w = r;
        if (w == i)
            return;
        int t = h[i];
        h[i] = h[w], h[w] = t;
        i = w;
    }
}

void charrnn_top_k(const float *logits, int V, int k, int *top_id)
{
    if (k > V)
        k = V;
    int n = 0;
    for (int v = 0; v < V; v++) {
        if (n < k) {
            /* sift up */
            int i = n++;
            top_id[i] = v;
            while (i > 0) {
                int p = (i - 1) / 2;
                if (!before(logits, top_id[p], top_id[i]))
                    break;
                int t = top_id[p];
                top_id[p] = top_id[i], top_id[i] = t;
                i = p;
            }
        } else if (before(logits, v, top_id[0])) {
            top_id[0] = v;
            sift_down(logits, top_id, n, 0);
        }
    }
    /* Heap sort: moving the last-ranked entry to the end each time leaves the
     * array most likely first. */
    for (int end = n - 1; end > 0; end--) {
        int t = top_id[0];
        top_id[0] = top_id[end], top_id[end] = t;
        sift_down(logits, top_id, end, 0);
    }
}

void charrnn_top_logprobs(const float *logits, int V, double lse, int k, int *top_id, float *top_lp)
{
    if (k <= 0)
        return;
    if (k > V)
        k = V;
    charrnn_top_k(logits, V, k, top_id);
    for (int i = 0; i < k; i++)
        top_lp[i] = charrnn_logprob_of(logits, lse, top_id[i]);
}
