/* charrnn-inspect: what /inspect's discovery and span match do, offline on a
 * text file: the units of a checkpoint whose state follows each feature of
 * the text (charrnn/inspect.h), best first, as a table; with --span, the
 * units that switch on exactly over those characters and the other places
 * where they switch on together. The states come from the library's stream,
 * the forward pass charrnn-serve runs. */
#include "charrnn/charrnn.h"

#include "args.h"
#include "flag_table.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct opts {
    const char *checkpoint, *text;
    long tail;
    int top, decimals, layer;
    charrnn_state_kind state;
    long span_start, span_end;
    double threshold;
    unsigned char seen[16];
} opts;

static int parse_state(const char *flag, const char *v, void *dst, int aux)
{
    (void)aux;
    int s = charrnn_state_parse(v);
    if (s >= 0)
        *(charrnn_state_kind *)dst = (charrnn_state_kind)s;
    return parse_choice(flag, v, s >= 0,
                        "cell, hidden, input_gate, forget_gate, cell_gate or output_gate");
}

static void show_state(const void *dst, char *buf, size_t n)
{
    snprintf(buf, n, "%s", charrnn_state_name(*(const charrnn_state_kind *)dst));
}

#define O(field) offsetof(opts, field)
static const flag_row rows[] = {
    {"--checkpoint", FLAG_STR, O(checkpoint), 0, 0, NULL, NULL, "FILE", "model (safetensors)", 1,
     0},
    {"--text", FLAG_STR, O(text), 0, 0, NULL, NULL, "FILE", "text to read (UTF-8)", 1, 0},
    {"--tail", FLAG_LONG, O(tail), 0, 1e9, NULL, NULL, "N",
     "read only the last N characters of the file (0: all)", 0, 0},
    {"--top", FLAG_INT, O(top), 1, 100, NULL, NULL, "N", "units listed per feature", 0, 0},
    {"--decimals", FLAG_INT, O(decimals), 0, 9, NULL, NULL, "D",
     "values rounded as /inspect serves them before r is taken", 0, 0},
    {"--span", FLAG_LONG, O(span_start), 0, 1e9, NULL, NULL, "START",
     "span match: the span's first character (0-based, in the text read)", 1, 0},
    {"--span-end", FLAG_LONG, O(span_end), 1, 1e9, NULL, NULL, "END",
     "span match: one past the span's last character", 1, 0},
    {"--threshold", FLAG_DOUBLE, O(threshold), -1e9, 1e9, NULL, NULL, "X",
     "span match: a unit is on above X", 0, 0},
    {"--layer", FLAG_INT, O(layer), 1, CHARRNN_MAX_LAYERS, NULL, NULL, "L",
     "span match: the layer (1 is nearest the input)", 0, 0},
    {"--state", FLAG_CUSTOM, O(state), 0, 0, parse_state, show_state, "STATE",
     "span match: cell, hidden or an LSTM gate (input_gate, forget_gate, cell_gate, output_gate)",
     0, 0},
};
#define NROWS (sizeof rows / sizeof rows[0])
_Static_assert(NROWS <= sizeof(((opts *)0)->seen), "opts.seen holds a byte per row");

static opts defaults(void)
{
    return (opts){NULL, NULL, 0, 5, 4, 1, CHARRNN_STATE_CELL, 0, 0, 0.5, {0}};
}

/* The --help page's head: the usage line and what the program does. */
static const char intro[] =
    "usage: charrnn-inspect --checkpoint FILE --text FILE [options]\n"
    "\n"
    "Lists the units whose state follows a feature of the text (line_position,\n"
    "word_position, quote, bracket_depth, indent): Pearson's r over the whole text,\n"
    "every layer and state, best first. With --span and --span-end: LSTMVis's match\n"
    "instead, in --layer's --state.\n"
    "\n";

static void usage(FILE *f)
{
    const opts d = defaults();
    flag_table_page(f, intro, rows, NROWS, &d);
}

/* The start of the last n characters of text (all when n is 0 or more). */
static size_t tail_offset(const uint8_t *text, size_t len, long n)
{
    size_t off = len, k = 0;
    if (n <= 0)
        return 0;
    while (off > 0 && k < (size_t)n) {
        off--;
        if ((text[off] & 0xC0) != 0x80)
            k++;
    }
    return off;
}

static void print_found(const charrnn_inspect *r, int top)
{
    size_t n = charrnn_inspect_found(r, top, NULL, 0);
    charrnn_found *f = malloc((n ? n : 1) * sizeof *f);
    if (!f)
        return;
    charrnn_inspect_found(r, top, f, n);
    printf("%-14s %5s %-6s %5s %9s\n", "feature", "layer", "state", "unit", "r");
    for (int feat = 0; feat < CHARRNN_FEAT_COUNT; feat++)
        for (size_t i = 0; i < n; i++)
            if ((int)f[i].feature == feat)
                printf("%-14s %5d %-6s %5d %9.4f\n", charrnn_feature_name(feat), f[i].layer + 1,
                       charrnn_state_name(f[i].state), f[i].unit, f[i].r);
    free(f);
}

static int print_match(const charrnn_inspect *r, const opts *o)
{
    enum { CAP = 1000 };
    int units[CHARRNN_MAX_HIDDEN];
    static charrnn_span spans[CAP];
    size_t nu, ns;
    if (charrnn_inspect_match(r, (size_t)o->span_start, (size_t)o->span_end, o->threshold, units,
                              CHARRNN_MAX_HIDDEN, &nu, spans, CAP, &ns) != CHARRNN_OK)
        return cli_fail(CHARRNN_EINVAL, "--span/--span-end must be a non-empty span of the text");
    printf("units on over [%ld, %ld) and off around it (layer %d %s, threshold %g): %zu\n",
           o->span_start, o->span_end, o->layer, charrnn_state_name(o->state), o->threshold, nu);
    for (size_t i = 0; i < nu; i++)
        printf("%s%d", i ? " " : "  ", units[i]);
    printf("%sother spans where they are all on: %zu\n", nu ? "\n" : "", ns);
    for (size_t i = 0; i < ns && i < CAP; i++)
        printf("  [%zu, %zu)\n", spans[i].start, spans[i].end);
    return 0;
}

int main(int argc, char **argv)
{
    charrnn_prog = "charrnn-inspect";
    opts o = defaults();
    int pr = args_parse(argc, argv, flag_table_one, &(flag_target){rows, NROWS, &o, o.seen}, usage);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    int span = flag_table_seen(rows, NROWS, o.seen, "--span");
    if (!o.checkpoint || !o.text || span != flag_table_seen(rows, NROWS, o.seen, "--span-end")) {
        fprintf(stderr,
                "charrnn-inspect: --checkpoint and --text are required, --span with "
                "--span-end (see --help)\n");
        return 2;
    }
    char err[CHARRNN_ERR_MAX];
    charrnn_model *m;
    uint8_t *buf;
    size_t len;
    if (charrnn_checkpoint_load(o.checkpoint, &m, err, sizeof err))
        return cli_fail(CHARRNN_EINVAL, err);
    int rc = charrnn_file_read(o.text, 0, &buf, &len, NULL, err, sizeof err);
    if (rc) {
        charrnn_model_free(m);
        return cli_fail(rc, err);
    }
    size_t off = tail_offset(buf, len, o.tail);
    const char *text = (const char *)buf + off;
    charrnn_inspect_opts io = {.layer = o.layer - 1,
                               .state = o.state,
                               .n_units = -1,
                               .find = span ? 0 : (1u << CHARRNN_FEAT_COUNT) - 1,
                               .decimals = o.decimals};
    charrnn_inspect *r = NULL;
    const char *field;
    rc = charrnn_inspect_create(m, text, len - off, &io, &r, &field, err, sizeof err);
    if (!rc)
        rc = charrnn_inspect_run(m, text, len - off, r, err, sizeof err);
    if (!rc) {
        fprintf(stderr, "charrnn-inspect: read %zu characters\n", charrnn_inspect_chars(r));
        if (span)
            rc = print_match(r, &o);
        else
            print_found(r, o.top);
    } else {
        rc = cli_fail(rc, err);
    }
    charrnn_inspect_release(r);
    free(buf);
    charrnn_model_free(m);
    return rc;
}
