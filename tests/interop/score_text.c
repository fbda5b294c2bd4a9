/* Test tool: scores a text with the sampler's streams (score_prime, length
 * 0, the path charrnn-serve's /score takes) and writes, for every character
 * after the first, its log-probability and the log-probabilities of all V
 * characters in vocabulary order (read back from top_logprobs = V), as raw
 * little-endian float32: (n - 1) x (1 + V). */
#include "charrnn/charrnn.h"
#include "tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    tool_usage(argc == 3, "score_text CHECKPOINT TEXT");
    charrnn_model *m = tool_load("score_text", argv[1]);
    const int V = m->cfg.vocab_size;
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = argv[2];
    p.prime_len = strlen(argv[2]);
    p.length = 0;
    p.logprobs = 1, p.top_logprobs = V, p.score_prime = 1;
    charrnn_stream *s;
    char err[CHARRNN_ERR_MAX];
    if (charrnn_stream_create(m, &p, &s, err, sizeof err))
        tool_fail("score_text", err);
    float *row = malloc((size_t)(V + 1) * sizeof *row);
    while (row && !charrnn_stream_done(s)) {
        charrnn_infer_step(m, 1, &s);
        charrnn_logprob r;
        if (!charrnn_stream_logprob(s, &r))
            continue;
        row[0] = r.logprob;
        for (int i = 0; i < r.n_top; i++)
            row[1 + r.top_id[i]] = r.top_lp[i];
        fwrite(row, sizeof *row, (size_t)V + 1, stdout);
    }
    free(row);
    charrnn_stream_free(s);
    charrnn_model_free(m);
    return 0;
}
