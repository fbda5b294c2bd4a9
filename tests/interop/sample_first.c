/* Test tool: the first character generated after PRIME by N streams with
 * consecutive seeds SEED0, SEED0 + 1, ..., each with length 1, counted per
 * vocabulary index; writes V lines, the count of index 0 first. The streams
 * are stepped together through charrnn_infer_step, in batches, as the daemon
 * steps them.
 * usage: sample_first CHECKPOINT PRIME N SEED0 TEMPERATURE TOP_K TOP_P
 *            [MIN_P REPETITION_PENALTY PRESENCE_PENALTY FREQUENCY_PENALTY PENALTY_WINDOW] */
#include "charrnn/charrnn.h"
#include "tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 256

int main(int argc, char **argv)
{
    tool_usage(argc == 8 || argc == 13 || argc == 14,
               "sample_first CHECKPOINT PRIME N SEED0 TEMPERATURE TOP_K TOP_P "
               "[MIN_P REPETITION_PENALTY PRESENCE_PENALTY FREQUENCY_PENALTY "
               "PENALTY_WINDOW [REGEX]]");
    charrnn_model *m = tool_load("sample_first", argv[1]);
    char err[CHARRNN_ERR_MAX];
    const size_t V = (size_t)m->cfg.vocab_size;
    const unsigned long long n = strtoull(argv[3], NULL, 10), seed0 = strtoull(argv[4], NULL, 10);
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = argv[2];
    p.prime_len = strlen(argv[2]);
    p.length = 1;
    p.temperature = strtof(argv[5], NULL);
    p.top_k = atoi(argv[6]);
    p.top_p = charrnn_sample_top_p(strtod(argv[7], NULL));
    if (argc == 13) {
        p.min_p = strtof(argv[8], NULL);
        p.repetition_penalty = strtof(argv[9], NULL);
        p.presence_penalty = strtof(argv[10], NULL);
        p.frequency_penalty = strtof(argv[11], NULL);
        p.penalty_window = atoi(argv[12]);
    }
    if (argc == 14)
        p.regex = argv[13];
    unsigned long long *count = calloc(V, sizeof *count);
    charrnn_stream *batch[BATCH], *live[BATCH];
    if (!count)
        tool_fail("sample_first", "out of memory");
    for (unsigned long long done = 0; done < n;) {
        size_t b = n - done < BATCH ? (size_t)(n - done) : BATCH;
        for (size_t i = 0; i < b; i++) {
            p.seed = seed0 + done + i;
            if (charrnn_stream_create(m, &p, &batch[i], err, sizeof err))
                tool_fail("sample_first", err);
        }
        size_t nlive = b, drawn = 0;
        memcpy(live, batch, b * sizeof *live);
        while (nlive > 0) {
            if (charrnn_infer_step(m, nlive, live))
                tool_fail("sample_first", "charrnn_infer_step failed");
            size_t k = 0;
            for (size_t i = 0; i < nlive; i++) {
                char ch[4];
                int len = charrnn_stream_emit(live[i], ch);
                uint32_t cp;
                if (len > 0) {
                    int idx = charrnn_utf8_decode((const uint8_t *)ch, (size_t)len, &cp) == len
                        ? charrnn_vocab_index(m->vocab, cp)
                        : -1;
                    if (idx < 0)
                        tool_fail("sample_first", "a generated character is not in the vocabulary");
                    count[idx]++, drawn++;
                }
                if (!charrnn_stream_done(live[i]))
                    live[k++] = live[i];
            }
            nlive = k;
        }
        if (drawn != b)
            tool_fail("sample_first", "a stream ended without generating a character");
        for (size_t i = 0; i < b; i++)
            charrnn_stream_free(batch[i]);
        done += b;
    }
    for (size_t v = 0; v < V; v++)
        printf("%llu\n", count[v]);
    free(count);
    charrnn_model_free(m);
    return ferror(stdout) ? 1 : 0;
}
