/* Test tool: loads a checkpoint, runs the training-path forward over a text
 * (B = 1, T = length, zero initial state) and writes the softmax
 * probabilities (T, V) as raw little-endian float32 to stdout. A bf16 or
 * int8 checkpoint runs as the f32 values it holds (charrnn_model_widen). */
#include "charrnn/charrnn.h"
#include "tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    tool_usage(argc == 3, "dump_probs CHECKPOINT TEXT");
    charrnn_model *m = tool_load("dump_probs", argv[1]);
    char err[CHARRNN_ERR_MAX];
    if (m->dtype != CHARRNN_DTYPE_F32) {
        charrnn_model *w;
        if (charrnn_model_widen(m, &w, err, sizeof err))
            tool_fail("dump_probs", err);
        charrnn_model_free(m);
        m = w;
    }
    size_t len = strlen(argv[2]), n;
    uint16_t *x = malloc((len + 1) * sizeof *x);
    if (!x ||
        charrnn_vocab_encode(m->vocab, (const uint8_t *)argv[2], len, 0, x, &n, err, sizeof err))
        tool_fail("dump_probs", x ? err : "out of memory");
    charrnn_optim_config oc = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    charrnn_trainer *tr;
    if (charrnn_trainer_create(m, 1, (int)n, 0.0f, &oc, 0, &tr, err, sizeof err))
        tool_fail("dump_probs", err);
    charrnn_trainer_forward(tr, x, x, CHARRNN_MODE_EVAL); /* targets unused here */
    fwrite(charrnn_trainer_probs(tr), sizeof(float), n * (size_t)m->cfg.vocab_size, stdout);
    charrnn_trainer_free(tr);
    charrnn_model_free(m);
    free(x);
    return 0;
}
