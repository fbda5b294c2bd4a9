/* charrnn-sample: print text sampled from a checkpoint (prime, then continuation). */
#include "args.h"
#include "charrnn/checkpoint.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
            "  --seed N            random seed, unsigned 64-bit (random; printed with --verbose)\n"
            "  --top-k K           keep the K most likely characters (0 = off)\n"
            "  --top-p P           nucleus sampling, 0 < P <= 1 (1 = off)\n"
            "  --stop TEXT         stop after generating TEXT (repeatable, up to %d)\n"
            "  --verbose           diagnostics on stderr\n"
            "  --help\n",
            CHARRNN_MAX_STOP);
}

static int write_out(void *ctx, const char *bytes, size_t len)
{
    (void)ctx;
    return fwrite(bytes, 1, len, stdout) != len;
}

int main(int argc, char **argv)
{
    charrnn_prog = "charrnn-sample";
    charrnn_sample_params p = charrnn_sample_defaults();
    const char *ckpt = NULL, *prime = "", *v;
    const char *stops[CHARRNN_MAX_STOP];
    int verbose = 0, have_seed = 0;
    long length = 200;
    for (int i = 1; i < argc; i++) {
        int r, ok = 1;
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--verbose")) {
            verbose = 1;
        } else if ((r = arg_value(argc, argv, &i, "--checkpoint", &v))) {
            ok = r > 0 && (ckpt = v);
        } else if ((r = arg_value(argc, argv, &i, "--length", &v))) {
            ok = r > 0 && parse_long("--length", v, 1, 100000000L, &length);
        } else if ((r = arg_value(argc, argv, &i, "--prime", &v))) {
            ok = r > 0 && (prime = v);
        } else if ((r = arg_value(argc, argv, &i, "--temperature", &v))) {
            ok = r > 0 && parse_float("--temperature", v, 0.0, 10.0, &p.temperature);
        } else if ((r = arg_value(argc, argv, &i, "--seed", &v))) {
            ok = r > 0 && parse_u64("--seed", v, &p.seed);
            have_seed = 1;
        } else if ((r = arg_value(argc, argv, &i, "--top-k", &v))) {
            ok = r > 0 && parse_int("--top-k", v, 0, 1 << 30, &p.top_k);
        } else if ((r = arg_value(argc, argv, &i, "--top-p", &v))) {
            ok = r > 0 && parse_float("--top-p", v, 1e-9, 1.0, &p.top_p);
        } else if ((r = arg_value(argc, argv, &i, "--stop", &v))) {
            ok = r > 0;
            if (ok && p.n_stop >= CHARRNN_MAX_STOP) {
                fprintf(stderr, "charrnn-sample: at most %d --stop strings\n", CHARRNN_MAX_STOP);
                ok = 0;
            } else if (ok && (!*v || strlen(v) > CHARRNN_MAX_STOP_LEN)) {
                fprintf(stderr, "charrnn-sample: --stop must be 1..%d bytes\n",
                        CHARRNN_MAX_STOP_LEN);
                ok = 0;
            } else if (ok) {
                stops[p.n_stop++] = v;
            }
        } else {
            fprintf(stderr, "charrnn-sample: unknown argument '%s' (see --help)\n", a);
            ok = 0;
        }
        if (!ok)
            return 2;
    }
    if (!ckpt) {
        fprintf(stderr, "charrnn-sample: --checkpoint is required (see --help)\n");
        return 2;
    }
    if (!have_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec;
        p.seed = charrnn_splitmix64(&x);
    }
    p.length = (size_t)length;
    p.prime = prime;
    p.prime_len = strlen(prime);
    p.stop = stops;
    char err[CHARRNN_ERR_MAX];
    if (charrnn_kernel_init(err, sizeof err)) {
        fprintf(stderr, "charrnn-sample: CHARRNN_KERNEL: %s\n", err);
        return 2;
    }
    charrnn_model *m;
    if (charrnn_checkpoint_load(ckpt, &m, err, sizeof err)) {
        fprintf(stderr, "charrnn-sample: %s\n", err);
        return 1;
    }
    charrnn_stream *s;
    if (charrnn_stream_create(m, &p, &s, err, sizeof err)) {
        fprintf(stderr, "charrnn-sample: %s\n", err);
        charrnn_model_free(m);
        return 1;
    }
    if (verbose)
        fprintf(stderr, "charrnn-sample: %s %dx%d, vocabulary %d, seed %llu, kernel %s\n",
                charrnn_cell_name(m->cfg.cell), m->cfg.num_layers, m->cfg.hidden_size,
                m->cfg.vocab_size, (unsigned long long)p.seed, charrnn_kernel_name());
    fputs(prime, stdout);
    charrnn_sample_run(s, m, write_out, NULL);
    if (verbose)
        fprintf(stderr, "\ncharrnn-sample: %zu characters, finish_reason %s\n",
                charrnn_stream_generated_chars(s),
                charrnn_finish_name(charrnn_stream_finish_reason(s)));
    int rc = fflush(stdout) ? 1 : 0;
    charrnn_stream_free(s);
    charrnn_model_free(m);
    return rc;
}
