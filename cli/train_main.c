/* charrnn-train: train a character-level language model on a text file. */
#include "args.h"
#include "charrnn/lowp.h"
#include "charrnn/session.h"
#include "charrnn/status.h"
#include "dist.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* A default of the initialisation as its flag takes it. */
static void init_default_text(char range[32], char forget[32])
{
    const charrnn_init d = charrnn_init_defaults();
    snprintf(range, 32, "%g", (double)d.range);
    snprintf(forget, 32, isnan(d.forget_bias) ? "none" : "%g", (double)d.forget_bias);
}

static void usage(FILE *f)
{
    char range[32], forget[32];
    init_default_text(range, forget);
    fprintf(f,
            "usage: charrnn-train --data FILE --checkpoint-dir DIR [options]\n"
            "\n"
            "Trains a multi-layer LSTM/GRU/RNN on a UTF-8 text file, one character at a time,\n"
            "and writes safetensors checkpoints (lm_<cell>_epoch<E>_<val>.safetensors,\n"
            "best.safetensors, latest.safetensors). SIGINT/SIGTERM/SIGUSR1: finish the step,\n"
            "save, exit 0 (under mpirun, send SIGUSR1: mpirun forwards it and ends cleanly).\n"
            "\n"
            "  --data FILE            training text (UTF-8)\n"
            "  --checkpoint-dir DIR   where checkpoints go (created if missing)\n"
            "  --cell lstm|gru|rnn    cell type (lstm)\n"
            "  --rnn-size N           hidden units per layer (128)\n"
            "  --num-layers N         layers (2)\n"
            "  --dropout P            dropout between layers, 0 <= P < 1 (0)\n"
            "  --seq-length N         characters per window, truncated BPTT length (50)\n"
            "  --batch-size N         parallel streams (50)\n"
            "  --max-epochs E         passes over the training data (50)\n"
            "  --max-iters N          stop after N iterations (0 = by epochs)\n"
            "  --learning-rate LR     (2e-3)\n"
            "  --optimizer adam|rmsprop (adam)\n"
            "  --lr-decay F           multiply the rate by F every epoch ... (0.97)\n"
            "  --lr-decay-after E     ... from epoch E on (10)\n"
            "  --grad-clip C          clamp gradients to [-C, C], 0 = off (5)\n"
            "  --train-frac F         first F of the text trains (0.95)\n"
            "  --val-frac F           next F validates; the rest is test (0.05)\n"
            "  --eval-every N         validate and checkpoint every N iterations (1000)\n"
            "  --stream-eval-chars N  each validation also reads the first N characters of the\n"
            "                         validation text as one stream, as a server does; 0 = off\n"
            "                         (10000)\n"
            "  --seed N               random seed (123)\n"
            "  --init-range R         initial weights uniform in [-R, R]; 0 = 1/sqrt(rnn-size),\n"
            "                         PyTorch's default (%s)\n"
            "  --forget-bias F|none   LSTM: forget-gate part of bias_ih set to F; none = left\n"
            "                         as drawn (%s)\n"
            "  --init-from FILE       start from a checkpoint (resumes exactly if it has state)\n"
            "  --publish PATH         atomically publish the best model (slim) to PATH\n"
            "  --publish-dtype T      f32 (default), bf16 or int8: the published file's weights\n"
            "  --threads N            threads, each training a share of the batch (0 = cores /\n"
            "                         blas-threads, at most 8); deterministic for a given N\n"
            "                         (under mpirun: per rank; R ranks x N threads give the\n"
            "                         same bits as one process with R*N threads)\n"
            "  --blas-threads N       OpenBLAS threads inside each GEMM (1); threads x\n"
            "                         blas-threads above the core count oversubscribes\n"
            "  --log FILE             also write one JSON object per line to FILE\n"
            "  --print-every N        JSON progress every N iterations (10)\n"
            "  --quiet                no progress on stderr\n"
            "  --help\n",
            range, forget);
}

static void no_usage(FILE *f)
{
    (void)f;
}

typedef struct ui {
    int tty, quiet;
    long print_every;
    FILE *log;
    double last_draw;
    const dist *d;
    int threads;
} ui;

static void json_line(ui *u, const char *line)
{
    if (!u->quiet && !u->tty)
        fprintf(stderr, "%s\n", line);
    if (u->log) {
        fprintf(u->log, "%s\n", line);
        fflush(u->log);
    }
}

/* A JSON log line from a printf format; string values go in through
 * json_string so that a path with a quote or a control character stays
 * valid JSON. */
__attribute__((format(printf, 2, 3))) static void emit(ui *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *line = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!line)
        return;
    va_start(ap, fmt);
    vsnprintf(line, (size_t)n + 1, fmt, ap);
    va_end(ap);
    json_line(u, line);
    free(line);
}

/* s as a quoted, escaped JSON string (malloc'd; "null" if out of memory). */
static char *json_string(const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *out = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return out ? out : strdup("null");
}

static void fmt_eta(double s, char *buf, size_t n)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* The hosts of the job's ranks as a JSON array (malloc'd; "[]" if out of memory). */
static char *hosts_json(const dist *d)
{
    cJSON *a = cJSON_CreateArray();
    for (int r = 0; a && r < d->comm.size; r++)
        cJSON_AddItemToArray(a, cJSON_CreateString(d->hosts[r]));
    char *out = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return out ? out : strdup("[]");
}

static void on_start(void *ctx, const charrnn_model *m, long start, long total, const char *info)
{
    ui *u = ctx;
    char *q = json_string(info), *h = hosts_json(u->d);
    if (u->tty && !u->quiet)
        fprintf(stderr, "charrnn-train: %s\n", info);
    emit(u,
         "{\"event\":\"start\",\"cell\":\"%s\",\"num_layers\":%d,\"rnn_size\":%d,"
         "\"start_iter\":%ld,\"total_iters\":%ld,\"ranks\":%d,\"threads_per_rank\":%d,"
         "\"hosts\":%s,\"info\":%s}",
         charrnn_cell_name(m->cfg.cell), m->cfg.num_layers, m->cfg.hidden_size, start, total,
         u->d->comm.size, u->threads, h, q);
    free(q), free(h);
}

static void on_iter(void *ctx, const charrnn_progress *p)
{
    ui *u = ctx;
    if (u->tty && !u->quiet && (p->elapsed_sec - u->last_draw > 0.1 || p->iter == p->total_iters)) {
        char eta[32];
        fmt_eta(p->eta_sec, eta, sizeof eta);
        fprintf(stderr, "\r\033[K%ld/%ld  epoch %.3f  loss %.4f  lr %.2e  %.0f chars/s  ETA %s",
                p->iter, p->total_iters, p->epoch, (double)p->train_loss, (double)p->lr,
                p->chars_per_sec, eta);
        u->last_draw = p->elapsed_sec;
    }
    if ((p->iter % u->print_every == 0 || p->iter == 1) && (!u->tty || u->log))
        emit(u,
             "{\"event\":\"iter\",\"iter\":%ld,\"total_iters\":%ld,\"epoch\":%.4f,"
             "\"train_loss\":%.6f,\"lr\":%.6g,\"chars_per_sec\":%.1f,\"eta_sec\":%.1f,"
             "\"elapsed_sec\":%.4f}",
             p->iter, p->total_iters, p->epoch, (double)p->train_loss, (double)p->lr,
             p->chars_per_sec, p->eta_sec, p->elapsed_sec);
}

static void on_eval(void *ctx, const charrnn_progress *p, float val, const char *path)
{
    ui *u = ctx;
    char v[32], s[32];
    const float st = p->val_stream_loss;
    snprintf(v, sizeof v, isfinite(val) ? "%.6f" : "null", (double)val);
    snprintf(s, sizeof s, isfinite(st) ? "%.6f" : "null", (double)st);
    if (u->tty && !u->quiet)
        fprintf(stderr, "\r\033[K%ld/%ld  epoch %.3f  train %.4f  val %s  one stream %s  -> %s\n",
                p->iter, p->total_iters, p->epoch, (double)p->train_loss, v, s, path);
    char *q = json_string(path);
    emit(u,
         "{\"event\":\"eval\",\"iter\":%ld,\"epoch\":%.4f,\"train_loss\":%.6f,\"val_loss\":%s,"
         "\"val_stream_loss\":%s,\"checkpoint\":%s}",
         p->iter, p->epoch, (double)p->train_loss, v, s, q);
    free(q);
    /* Printed even with --quiet: it is about the model, not the progress. */
    if (isfinite(val) && isfinite(st) && st - val > CHARRNN_STREAM_GAP_WARN)
        fprintf(stderr,
                "charrnn-train: warning: at iteration %ld the validation text read as one stream "
                "costs %.3f nats/char against %.3f in batches: the model degrades over a long "
                "context (try another --seed or initialisation, or train longer)\n",
                p->iter, (double)st, (double)val);
}

static void on_done(void *ctx, const charrnn_progress *p, float val, float test, int interrupted)
{
    ui *u = ctx;
    char v[32], t[32];
    snprintf(v, sizeof v, isfinite(val) ? "%.6f" : "null", (double)val);
    snprintf(t, sizeof t, isfinite(test) ? "%.6f" : "null", (double)test);
    if (u->tty && !u->quiet)
        fprintf(stderr, "%s after %ld iterations: val loss %s, test loss %s\n",
                interrupted ? "stopped" : "done", p->iter, v, t);
    emit(u, "{\"event\":\"done\",\"iter\":%ld,\"val_loss\":%s,\"test_loss\":%s,\"interrupted\":%s}",
         p->iter, v, t, interrupted ? "true" : "false");
}

typedef struct opts {
    charrnn_train_opts o;
    ui u;
    int threads, blas_threads;
    const char *log_path;
} opts;

/* One command-line argument (args_parse's contract). */
static int flag(void *ctx, int argc, char **argv, int *i)
{
    opts *f = ctx;
    charrnn_train_opts *o = &f->o;
    const char *v;
    int r;
    if (!strcmp(argv[*i], "--quiet")) {
        f->u.quiet = 1;
        return 1;
    } else if ((r = arg_value(argc, argv, i, "--data", &v))) {
        return r > 0 && (o->data_path = v);
    } else if ((r = arg_value(argc, argv, i, "--checkpoint-dir", &v))) {
        return r > 0 && (o->checkpoint_dir = v);
    } else if ((r = arg_value(argc, argv, i, "--cell", &v))) {
        return r > 0 &&
            parse_choice("--cell", v, !charrnn_cell_parse(v, &o->cell), "lstm, gru or rnn");
    } else if ((r = arg_value(argc, argv, i, "--rnn-size", &v))) {
        return r > 0 && parse_int("--rnn-size", v, 1, CHARRNN_MAX_HIDDEN, &o->rnn_size);
    } else if ((r = arg_value(argc, argv, i, "--num-layers", &v))) {
        return r > 0 && parse_int("--num-layers", v, 1, CHARRNN_MAX_LAYERS, &o->num_layers);
    } else if ((r = arg_value(argc, argv, i, "--dropout", &v))) {
        return r > 0 && parse_float("--dropout", v, 0.0, 0.99, &o->dropout);
    } else if ((r = arg_value(argc, argv, i, "--seq-length", &v))) {
        return r > 0 && parse_int("--seq-length", v, 1, 100000, &o->seq_length);
    } else if ((r = arg_value(argc, argv, i, "--batch-size", &v))) {
        return r > 0 && parse_int("--batch-size", v, 1, 100000, &o->batch_size);
    } else if ((r = arg_value(argc, argv, i, "--max-epochs", &v))) {
        return r > 0 && parse_double("--max-epochs", v, 1e-9, 1e9, &o->max_epochs);
    } else if ((r = arg_value(argc, argv, i, "--max-iters", &v))) {
        return r > 0 && parse_long("--max-iters", v, 0, 1000000000000L, &o->max_iters);
    } else if ((r = arg_value(argc, argv, i, "--learning-rate", &v))) {
        return r > 0 && parse_float("--learning-rate", v, 1e-12, 10.0, &o->learning_rate);
    } else if ((r = arg_value(argc, argv, i, "--optimizer", &v))) {
        return r > 0 &&
            parse_choice("--optimizer", v, !charrnn_optim_parse(v, &o->optimizer),
                         "adam or rmsprop");
    } else if ((r = arg_value(argc, argv, i, "--lr-decay", &v))) {
        return r > 0 && parse_float("--lr-decay", v, 1e-6, 1.0, &o->lr_decay);
    } else if ((r = arg_value(argc, argv, i, "--lr-decay-after", &v))) {
        return r > 0 && parse_double("--lr-decay-after", v, 0.0, 1e9, &o->lr_decay_after);
    } else if ((r = arg_value(argc, argv, i, "--grad-clip", &v))) {
        return r > 0 && parse_float("--grad-clip", v, 0.0, 1e9, &o->grad_clip);
    } else if ((r = arg_value(argc, argv, i, "--train-frac", &v))) {
        return r > 0 && parse_double("--train-frac", v, 1e-9, 1.0, &o->train_frac);
    } else if ((r = arg_value(argc, argv, i, "--val-frac", &v))) {
        return r > 0 && parse_double("--val-frac", v, 0.0, 1.0, &o->val_frac);
    } else if ((r = arg_value(argc, argv, i, "--eval-every", &v))) {
        return r > 0 && parse_long("--eval-every", v, 1, 1000000000000L, &o->eval_every);
    } else if ((r = arg_value(argc, argv, i, "--stream-eval-chars", &v))) {
        return r > 0 &&
            parse_long("--stream-eval-chars", v, 0, 1000000000000L, &o->stream_eval_chars);
    } else if ((r = arg_value(argc, argv, i, "--seed", &v))) {
        return r > 0 && parse_u64("--seed", v, &o->seed);
    } else if ((r = arg_value(argc, argv, i, "--init-range", &v))) {
        return r > 0 && parse_float("--init-range", v, 0.0, 10.0, &o->init.range);
    } else if ((r = arg_value(argc, argv, i, "--forget-bias", &v))) {
        if (r > 0 && !strcmp(v, "none")) {
            o->init.forget_bias = NAN;
            return 1;
        }
        return r > 0 && parse_float("--forget-bias", v, -100.0, 100.0, &o->init.forget_bias);
    } else if ((r = arg_value(argc, argv, i, "--init-from", &v))) {
        return r > 0 && (o->init_from = v);
    } else if ((r = arg_value(argc, argv, i, "--publish", &v))) {
        return r > 0 && (o->publish = v);
    } else if ((r = arg_value(argc, argv, i, "--publish-dtype", &v))) {
        return r > 0 &&
            parse_choice("--publish-dtype", v, !charrnn_dtype_parse(v, &o->publish_dtype, NULL, 0),
                         "f32, bf16 or int8");
    } else if ((r = arg_value(argc, argv, i, "--threads", &v))) {
        return r > 0 && parse_int("--threads", v, 0, 8, &f->threads);
    } else if ((r = arg_value(argc, argv, i, "--blas-threads", &v))) {
        return r > 0 && parse_int("--blas-threads", v, 1, 8, &f->blas_threads);
    } else if ((r = arg_value(argc, argv, i, "--log", &v))) {
        return r > 0 && (f->log_path = v);
    } else if ((r = arg_value(argc, argv, i, "--print-every", &v))) {
        return r > 0 && parse_long("--print-every", v, 1, 1000000000L, &f->u.print_every);
    }
    return -1;
}

static int train(int argc, char **argv, const dist *d)
{
    /* Only rank 0 reports progress; the others print only their errors. */
    const int rank0 = d->comm.rank == 0;
    opts f = {charrnn_train_defaults(), {isatty(2), 0, 10, NULL, -1.0, d, 0}, 0, 1, NULL};
    int pr = args_parse(argc, argv, flag, &f, rank0 ? usage : no_usage);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    charrnn_train_opts o = f.o;
    ui u = f.u;
    u.quiet |= !rank0;
    int threads = f.threads;
    const int blas_threads = f.blas_threads;
    const char *log_path = f.log_path;
    if (!o.data_path || !o.checkpoint_dir) {
        fprintf(stderr, "charrnn-train: --data and --checkpoint-dir are required (see --help)\n");
        return 2;
    }
    if (o.train_frac + o.val_frac > 1.0 + 1e-9) {
        fprintf(stderr, "charrnn-train: --train-frac + --val-frac must be at most 1\n");
        return 2;
    }
    if (log_path && rank0 && !(u.log = fopen(log_path, "a"))) {
        perror(log_path);
        return 1;
    }
    /* Threads run data-parallel shards of the batch, each with single-threaded
     * BLAS by default: the per-step GEMMs are too small for OpenBLAS's own
     * threads (tests/bench/bench_train.py measures the alternative, one shard
     * with --blas-threads 2, next to the default: docs/benchmarks.md,
     * "Training speed"). */
    if (threads == 0) { /* all cores, shared with the BLAS threads and this host's other ranks */
        long n = sysconf(_SC_NPROCESSORS_ONLN) / blas_threads / d->local_size;
        threads = n > 0 ? (int)(n < 8 ? n : 8) : 1;
    }
    o.threads = u.threads = threads;
    o.comm = d->comm.size > 1 ? &d->comm : NULL;
    openblas_set_num_threads(blas_threads);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* Open MPI's mpirun forwards SIGUSR1 to every rank and then waits for the
     * job; on SIGTERM it kills the ranks after odls_base_sigkill_timeout. */
    sigaction(SIGUSR1, &sa, NULL);
    charrnn_train_callbacks cb = {&u, on_start, on_iter, on_eval, on_done, &stop_requested};
    char err[CHARRNN_ERR_MAX];
    int rc = charrnn_train_run(&o, &cb, err, sizeof err);
    if (u.log)
        fclose(u.log);
    if (rc && u.tty && !u.quiet)
        fputc('\n', stderr);
    if (rc && !rank0) { /* which rank said it */
        char msg[CHARRNN_ERR_MAX + 300];
        snprintf(msg, sizeof msg, "rank %d (%s): %s", d->comm.rank, d->hosts[d->comm.rank],
                 *err ? err : charrnn_strerror(rc));
        return cli_fail(rc, msg);
    }
    return rc ? cli_fail(rc, err) : 0;
}

int main(int argc, char **argv)
{
    charrnn_prog = "charrnn-train";
    dist d;
    int rc = dist_begin(&argc, &argv, &d);
    if (rc)
        return rc;
    return dist_end(&d, train(argc, argv, &d));
}
