/* charrnn-sample: print text sampled from a checkpoint (prime, then continuation). */
#include "args.h"
#include "flag_table.h"
#include "charrnn/checkpoint.h"
#include "charrnn/lowp.h"
#include "charrnn/rowsplit.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64

static int write_out(void *ctx, const char *bytes, size_t len)
{
    (void)ctx;
    return fwrite(bytes, 1, len, stdout) != len;
}

typedef struct opts {
    charrnn_sample_params p;
    const char *ckpt, *prime;
    const char *stops[CHARRNN_MAX_STOP];
    int verbose, threads;
    unsigned char seen[32]; /* the rows given (flag_table_take) */
} opts;

/* A sampling number (aux: its charrnn_sample_field), checked by the
 * library's table of limits, into the params' field of its type. */
static int parse_float_field(const char *flag, const char *v, void *dst, int aux)
{
    double d;
    if (!parse_sample_number(flag, (charrnn_sample_field)aux, v, &d))
        return 0;
    *(float *)dst = aux == CHARRNN_SAMPLE_TOP_P ? charrnn_sample_top_p(d) : (float)d;
    return 1;
}

static int parse_int_field(const char *flag, const char *v, void *dst, int aux)
{
    double d;
    if (!parse_sample_number(flag, (charrnn_sample_field)aux, v, &d))
        return 0;
    *(int *)dst = (int)d;
    return 1;
}

static int parse_length(const char *flag, const char *v, void *dst, int aux)
{
    double d;
    if (!parse_sample_number(flag, (charrnn_sample_field)aux, v, &d))
        return 0;
    *(size_t *)dst = (size_t)d;
    return 1;
}

static int parse_regex(const char *flag, const char *v, void *dst, int aux)
{
    if (!parse_sample_length(flag, (charrnn_sample_field)aux, v))
        return 0;
    *(const char **)dst = v;
    return 1;
}

/* --stop repeats: each one is appended (dst is the opts). */
static int parse_stop(const char *flag, const char *v, void *dst, int aux)
{
    (void)aux;
    opts *o = dst;
    if (!parse_sample_stop(flag, o->p.n_stop, v))
        return 0;
    o->stops[o->p.n_stop++] = v;
    return 1;
}

static void show_int(const void *dst, char *buf, size_t n)
{
    snprintf(buf, n, "%d", *(const int *)dst);
}

#define O(field) offsetof(opts, field)
#define TEXT_(x) #x
#define TEXT(x) TEXT_(x) /* a number macro's digits, in a help string */

static const flag_row rows[] = {
    {"--checkpoint", FLAG_STR, O(ckpt), 0, 0, NULL, NULL, "FILE", "model to sample from", 1, 0},
    {"--length", FLAG_CUSTOM, O(p.length), 0, 0, parse_length, NULL, "N",
     "characters to generate (200)", 1, CHARRNN_SAMPLE_LENGTH},
    {"--prime", FLAG_STR, O(prime), 0, 0, NULL, NULL, "TEXT", "text fed to the model first (\"\")",
     1, 0},
    {"--temperature", FLAG_CUSTOM, O(p.temperature), 0, 0, parse_float_field, NULL, "T",
     "0 = argmax, else 0 < T <= 10 (1.0)", 1, CHARRNN_SAMPLE_TEMPERATURE},
    {"--seed", FLAG_U64, O(p.seed), 0, 0, NULL, NULL, "N",
     "random seed, unsigned 64-bit (random, below 2^53; printed with\n--verbose)", 1, 0},
    {"--top-k", FLAG_CUSTOM, O(p.top_k), 0, 0, parse_int_field, NULL, "K",
     "keep the K most likely characters (0 = off)", 1, CHARRNN_SAMPLE_TOP_K},
    {"--top-p", FLAG_CUSTOM, O(p.top_p), 0, 0, parse_float_field, NULL, "P",
     "nucleus sampling, 0 < P <= 1 (1 = off)", 1, CHARRNN_SAMPLE_TOP_P},
    {"--min-p", FLAG_CUSTOM, O(p.min_p), 0, 0, parse_float_field, NULL, "P",
     "drop characters less likely than P times the most likely\none, 0 <= P <= 1 (0 = off; "
     "after top-k and top-p)",
     1, CHARRNN_SAMPLE_MIN_P},
    {"--repetition-penalty", FLAG_CUSTOM, O(p.repetition_penalty), 0, 0, parse_float_field, NULL,
     "R",
     "divide a positive logit (multiply a negative one) of\nevery character in the window by R, "
     "0 < R <= 10 (1 = off)",
     1, CHARRNN_SAMPLE_REPETITION_PENALTY},
    {"--presence-penalty", FLAG_CUSTOM, O(p.presence_penalty), 0, 0, parse_float_field, NULL, "A",
     "subtract A from the logit of every character in the\nwindow, -2 <= A <= 2 (0 = off)", 1,
     CHARRNN_SAMPLE_PRESENCE_PENALTY},
    {"--frequency-penalty", FLAG_CUSTOM, O(p.frequency_penalty), 0, 0, parse_float_field, NULL, "F",
     "subtract F times its count in the window, -2..2 (0)", 1, CHARRNN_SAMPLE_FREQUENCY_PENALTY},
    {"--penalty-window", FLAG_CUSTOM, O(p.penalty_window), 0, 0, parse_int_field, show_int, "N",
     "the penalties' window: the last N characters of the prime\nand the generated text, "
     "1.." TEXT(CHARRNN_MAX_PENALTY_WINDOW),
     0, CHARRNN_SAMPLE_PENALTY_WINDOW},
    {"--stop", FLAG_CUSTOM, 0, 0, 0, parse_stop, NULL, "TEXT",
     "stop after generating TEXT (repeatable, up to " TEXT(CHARRNN_MAX_STOP) ")", 1, 0},
    {"--regex", FLAG_CUSTOM, O(p.regex), 0, 0, parse_regex, NULL, "PATTERN",
     "the generated text must match PATTERN whole: characters\nthat leave no match possible are "
     "never drawn; it stops\nonce it matches and cannot go on (docs/sampling.md)",
     1, CHARRNN_SAMPLE_REGEX},
    {"--threads", FLAG_INT, O(threads), 1, MAX_THREADS, NULL, NULL, "N",
     "threads for the one stream, 1.." TEXT(
         MAX_THREADS) " (1): each step's rows are\nsplit across them (same text; "
                      "faster where the cores are free)",
     1, 0},
    {"--verbose", FLAG_SWITCH, O(verbose), 0, 0, NULL, NULL, NULL, "diagnostics on stderr", 1, 0},
};
#define NROWS (sizeof rows / sizeof rows[0])
_Static_assert(NROWS <= sizeof(((opts *)0)->seen), "opts.seen holds a byte per row");

static opts defaults(void)
{
    return (opts){.p = charrnn_sample_defaults(), .prime = "", .threads = 1};
}

/* The --help page's head: the usage line and what the program does. */
static const char intro[] =
    "usage: charrnn-sample --checkpoint FILE [options]\n"
    "\n"
    "Prints the prime text followed by sampled characters on stdout (as char-rnn's\n"
    "sample.lua). The output is a pure function of the checkpoint and the options.\n"
    "\n";

static void usage(FILE *f)
{
    const opts d = defaults();
    flag_table_page(f, intro, rows, NROWS, &d);
}

static void *help(void *rs)
{
    charrnn_rowsplit_help(rs);
    return NULL;
}

/* The stream to its end, its steps' rows split over `threads` threads (the
 * caller's and threads - 1 helpers). Where a helper cannot be had, fewer. */
static int run_stream(charrnn_stream *s, const charrnn_model *m, int threads)
{
    charrnn_rowsplit *rs = threads > 1 ? charrnn_rowsplit_create() : NULL;
    pthread_t th[MAX_THREADS];
    int started = 0;
    if (rs) {
        charrnn_rowsplit_open(rs);
        while (started < threads - 1 && pthread_create(&th[started], NULL, help, rs) == 0)
            started++;
    }
    int run = charrnn_sample_run_split(s, m, rs, write_out, NULL);
    if (rs) {
        charrnn_rowsplit_close(rs);
        for (int k = 0; k < started; k++)
            pthread_join(th[k], NULL);
        charrnn_rowsplit_free(rs);
    }
    return run;
}

int main(int argc, char **argv)
{
    charrnn_prog = "charrnn-sample";
    opts o = defaults();
    int pr = args_parse(argc, argv, flag_table_one, &(flag_target){rows, NROWS, &o, o.seen}, usage);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    charrnn_sample_params p = o.p;
    const char *ckpt = o.ckpt, *prime = o.prime;
    const int verbose = o.verbose;
    if (!ckpt) {
        fprintf(stderr, "charrnn-sample: --checkpoint is required (see --help)\n");
        return 2;
    }
    if (!flag_table_seen(rows, NROWS, o.seen, "--seed")) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec;
        p.seed = charrnn_user_seed(charrnn_splitmix64(&x));
    }
    p.prime = prime;
    p.prime_len = strlen(prime);
    p.stop = o.stops;
    char err[CHARRNN_ERR_MAX];
    if (charrnn_kernel_init(err, sizeof err)) {
        fprintf(stderr, "charrnn-sample: CHARRNN_KERNEL: %s\n", err);
        return 2;
    }
    charrnn_model *m;
    int rc = charrnn_checkpoint_load(ckpt, &m, err, sizeof err);
    if (rc)
        return cli_fail(rc, err);
    charrnn_stream *s;
    if ((rc = charrnn_stream_create(m, &p, &s, err, sizeof err))) {
        charrnn_model_free(m);
        return cli_fail(rc, err);
    }
    if (verbose)
        fprintf(stderr, "charrnn-sample: %s %dx%d %s, vocabulary %d, seed %llu, kernel %s\n",
                charrnn_cell_name(m->cfg.cell), m->cfg.num_layers, m->cfg.hidden_size,
                charrnn_dtype_name(m->dtype), m->cfg.vocab_size, (unsigned long long)p.seed,
                charrnn_kernel_name());
    fputs(prime, stdout);
    int run = run_stream(s, m, o.threads);
    if (run)
        cli_fail(run, NULL);
    if (verbose)
        fprintf(stderr, "\ncharrnn-sample: %zu characters, finish_reason %s\n",
                charrnn_stream_generated_chars(s),
                charrnn_finish_name(charrnn_stream_finish_reason(s)));
    rc = run || fflush(stdout) ? 1 : 0;
    charrnn_stream_free(s);
    charrnn_model_free(m);
    return rc;
}
