/* charrnn-sample: print text sampled from a checkpoint (prime, then continuation). */
#include "args.h"
#include "charrnn/checkpoint.h"
#include "charrnn/lowp.h"
#include "charrnn/rowsplit.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64

static void usage(FILE *f)
{
    fprintf(f,
            "usage: charrnn-sample --checkpoint FILE [options]\n"
            "\n"
            "Prints the prime text followed by sampled characters on stdout (as char-rnn's\n"
            "sample.lua). The output is a pure function of the checkpoint and the options.\n"
            "\n"
            "  --checkpoint FILE   model to sample from\n"
            "  --length N          characters to generate (200)\n"
            "  --prime TEXT        text fed to the model first (\"\")\n"
            "  --temperature T     0 = argmax, else 0 < T <= 10 (1.0)\n"
            "  --seed N            random seed, unsigned 64-bit (random, below 2^53; printed with\n"
            "                      --verbose)\n"
            "  --top-k K           keep the K most likely characters (0 = off)\n"
            "  --top-p P           nucleus sampling, 0 < P <= 1 (1 = off)\n"
            "  --min-p P           drop characters less likely than P times the most likely\n"
            "                      one, 0 <= P <= 1 (0 = off; after top-k and top-p)\n"
            "  --repetition-penalty R  divide a positive logit (multiply a negative one) of\n"
            "                      every character in the window by R, 0 < R <= 10 (1 = off)\n"
            "  --presence-penalty A    subtract A from the logit of every character in the\n"
            "                      window, -2 <= A <= 2 (0 = off)\n"
            "  --frequency-penalty F   subtract F times its count in the window, -2..2 (0)\n"
            "  --penalty-window N  the penalties' window: the last N characters of the prime\n"
            "                      and the generated text, 1..%d (%d)\n"
            "  --stop TEXT         stop after generating TEXT (repeatable, up to %d)\n"
            "  --regex PATTERN     the generated text must match PATTERN whole: characters\n"
            "                      that leave no match possible are never drawn; it stops\n"
            "                      once it matches and cannot go on (docs/sampling.md)\n"
            "  --threads N         threads for the one stream, 1..%d (1): each step's rows are\n"
            "                      split across them (same text; faster where the cores are free)\n"
            "  --verbose           diagnostics on stderr\n"
            "  --help\n",
            CHARRNN_MAX_PENALTY_WINDOW, CHARRNN_DEFAULT_PENALTY_WINDOW, CHARRNN_MAX_STOP,
            MAX_THREADS);
}

static int write_out(void *ctx, const char *bytes, size_t len)
{
    (void)ctx;
    return fwrite(bytes, 1, len, stdout) != len;
}

typedef struct opts {
    charrnn_sample_params p;
    const char *ckpt, *prime;
    const char *stops[CHARRNN_MAX_STOP];
    int verbose, have_seed, threads;
} opts;

/* One command-line argument (args_parse's contract). */
static int flag(void *ctx, int argc, char **argv, int *i)
{
    opts *o = ctx;
    const char *v;
    double d;
    int r;
    if (!strcmp(argv[*i], "--verbose")) {
        o->verbose = 1;
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--checkpoint", &v))) {
        return r > 0 && (o->ckpt = v);
    } else if ((r = arg_value(argc, argv, i, "--length", &v))) {
        if (r < 0 || !parse_sample_number("--length", CHARRNN_SAMPLE_LENGTH, v, &d))
            return 0;
        o->p.length = (size_t)d;
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--prime", &v))) {
        return r > 0 && (o->prime = v);
    } else if ((r = arg_value(argc, argv, i, "--temperature", &v))) {
        if (r < 0 || !parse_sample_number("--temperature", CHARRNN_SAMPLE_TEMPERATURE, v, &d))
            return 0;
        o->p.temperature = (float)d;
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--seed", &v))) {
        o->have_seed = 1;
        return r > 0 && parse_u64("--seed", v, &o->p.seed);
    } else if ((r = arg_value(argc, argv, i, "--top-k", &v))) {
        if (r < 0 || !parse_sample_number("--top-k", CHARRNN_SAMPLE_TOP_K, v, &d))
            return 0;
        o->p.top_k = (int)d;
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--top-p", &v))) {
        if (r < 0 || !parse_sample_number("--top-p", CHARRNN_SAMPLE_TOP_P, v, &d))
            return 0;
        o->p.top_p = charrnn_sample_top_p(d);
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--min-p", &v))) {
        if (r < 0 || !parse_sample_number("--min-p", CHARRNN_SAMPLE_MIN_P, v, &d))
            return 0;
        o->p.min_p = (float)d;
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--repetition-penalty", &v))) {
        if (r < 0 ||
            !parse_sample_number("--repetition-penalty", CHARRNN_SAMPLE_REPETITION_PENALTY, v, &d))
            return 0;
        o->p.repetition_penalty = (float)d;
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--presence-penalty", &v))) {
        if (r < 0 ||
            !parse_sample_number("--presence-penalty", CHARRNN_SAMPLE_PRESENCE_PENALTY, v, &d))
            return 0;
        o->p.presence_penalty = (float)d;
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--frequency-penalty", &v))) {
        if (r < 0 ||
            !parse_sample_number("--frequency-penalty", CHARRNN_SAMPLE_FREQUENCY_PENALTY, v, &d))
            return 0;
        o->p.frequency_penalty = (float)d;
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--penalty-window", &v))) {
        if (r < 0 || !parse_sample_number("--penalty-window", CHARRNN_SAMPLE_PENALTY_WINDOW, v, &d))
            return 0;
        o->p.penalty_window = (int)d;
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--threads", &v))) {
        return r > 0 && parse_int("--threads", v, 1, MAX_THREADS, &o->threads);
    } else if ((r = arg_value(argc, argv, i, "--regex", &v))) {
        if (r < 0 || !parse_sample_length("--regex", CHARRNN_SAMPLE_REGEX, v))
            return 0;
        o->p.regex = v;
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--stop", &v))) {
        if (r < 0 || !parse_sample_stop("--stop", o->p.n_stop, v))
            return 0;
        o->stops[o->p.n_stop++] = v;
        return 1;
    }
    return -1;
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
    opts o = {.p = charrnn_sample_defaults(), .prime = "", .threads = 1};
    int pr = args_parse(argc, argv, flag, &o, usage);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    charrnn_sample_params p = o.p;
    const char *ckpt = o.ckpt, *prime = o.prime;
    const int verbose = o.verbose;
    if (!ckpt) {
        fprintf(stderr, "charrnn-sample: --checkpoint is required (see --help)\n");
        return 2;
    }
    if (!o.have_seed) {
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
