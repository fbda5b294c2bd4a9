/* Test tool: one layer's state after each character of a text, as the
 * library's recorder (charrnn/inspect.h) receives it from the stream's own
 * prefill and step, unrounded: every unit of the layer, as raw little-endian
 * float32, (H, n) unit-major. /inspect serves the same values rounded. The
 * state is any of charrnn_state_name's (cell, hidden, or an LSTM gate). */
#include "charrnn/charrnn.h"
#include "tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    tool_usage(argc == 5, "dump_states CHECKPOINT TEXT LAYER(1-based) STATE");
    charrnn_model *m = tool_load("dump_states", argv[1]);
    charrnn_inspect_opts o = {.layer = atoi(argv[3]) - 1,
                              .state = (charrnn_state_kind)charrnn_state_parse(argv[4]),
                              .n_units = -1,
                              .decimals = -1};
    charrnn_inspect *r;
    const char *field;
    size_t len = strlen(argv[2]);
    char err[CHARRNN_ERR_MAX];
    if (charrnn_inspect_create(m, argv[2], len, &o, &r, &field, err, sizeof err) ||
        charrnn_inspect_run(m, argv[2], len, r, err, sizeof err))
        tool_fail("dump_states", err);
    size_t n = charrnn_inspect_chars(r);
    if (charrnn_inspect_filled(r) != n) {
        fprintf(stderr, "dump_states: the stream handed over %zu of %zu states\n",
                charrnn_inspect_filled(r), n);
        return 1;
    }
    for (int k = 0; k < m->cfg.hidden_size; k++)
        for (size_t t = 0; t < n; t++) {
            float v = (float)charrnn_inspect_value(r, k, t);
            fwrite(&v, sizeof v, 1, stdout);
        }
    charrnn_inspect_release(r);
    charrnn_model_free(m);
    return 0;
}
