/* charrnn-train: train a character-level language model on a text file. */
#include "args.h"
#include "charrnn/lowp.h"
#include "charrnn/sampler.h"
#include "charrnn/session.h"
#include "charrnn/status.h"
#include "dist.h"
#include "flag_table.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
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
    const char *precision; /* --precision, for the start event */
    double test_frac;      /* of the text left for the test split: 1 - train - val */
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
         "\"hosts\":%s,\"precision\":\"%s\",\"info\":%s}",
         charrnn_cell_name(m->cfg.cell), m->cfg.num_layers, m->cfg.hidden_size, start, total,
         u->d->comm.size, u->threads, h, u->precision, q);
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
    /* The default split (char-rnn's 95 % + 5 %) leaves no test text: say so
     * rather than print a bare null. */
    const char *why = isfinite(test) ? NULL
        : u->test_frac < 1e-9        ? "no test split: --train-frac + --val-frac leave no text for "
                                       "it (e.g. --train-frac 0.9 keeps 5 %)"
                                     : "the test split is shorter than one batch";
    if (u->tty && !u->quiet)
        fprintf(stderr, "%s after %ld iterations: val loss %s, test loss %s%s%s%s\n",
                interrupted ? "stopped" : "done", p->iter, v, t, why ? " (" : "", why ? why : "",
                why ? ")" : "");
    char *w = why ? json_string(why) : NULL;
    emit(u,
         "{\"event\":\"done\",\"iter\":%ld,\"val_loss\":%s,\"test_loss\":%s%s%s,"
         "\"interrupted\":%s}",
         p->iter, v, t, w ? ",\"test_loss_note\":" : "", w ? w : "",
         interrupted ? "true" : "false");
    free(w);
}

typedef struct opts {
    charrnn_train_opts o;
    ui u;
    int threads;
    const char *log_path;
    unsigned char seen[32]; /* the rows given (flag_table_take) */
} opts;

static int parse_cell(const char *flag, const char *v, void *dst, int aux)
{
    (void)aux;
    return parse_choice(flag, v, !charrnn_cell_parse(v, dst), "lstm, gru or rnn");
}

static int parse_optimizer(const char *flag, const char *v, void *dst, int aux)
{
    (void)aux;
    return parse_choice(flag, v, !charrnn_optim_parse(v, dst), "adam or rmsprop");
}

static int parse_dtype(const char *flag, const char *v, void *dst, int aux)
{
    (void)aux;
    return parse_choice(flag, v, !charrnn_dtype_parse(v, dst, NULL, 0), "f32, bf16 or int8");
}

static int parse_precision(const char *flag, const char *v, void *dst, int aux)
{
    (void)aux;
    return parse_choice(flag, v, !charrnn_precision_parse(v, dst), "f32 or bf16");
}

static void show_precision(const void *dst, char *buf, size_t n)
{
    snprintf(buf, n, "%s", charrnn_precision_name(*(const charrnn_precision *)dst));
}

static int parse_forget_bias(const char *flag, const char *v, void *dst, int aux)
{
    (void)aux;
    if (!strcmp(v, "none")) {
        *(float *)dst = NAN;
        return 1;
    }
    return parse_float(flag, v, -100.0, 100.0, dst);
}

static void show_cell(const void *dst, char *buf, size_t n)
{
    snprintf(buf, n, "%s", charrnn_cell_name(*(const charrnn_cell *)dst));
}

static void show_optimizer(const void *dst, char *buf, size_t n)
{
    snprintf(buf, n, "%s", charrnn_optim_name(*(const charrnn_optimizer *)dst));
}

static void show_forget_bias(const void *dst, char *buf, size_t n)
{
    const float f = *(const float *)dst;
    snprintf(buf, n, isnan(f) ? "none" : "%g", (double)f);
}

#define O(field) offsetof(opts, field)
#define BIG 1e12

static const flag_row rows[] = {
    {"--data", FLAG_STR, O(o.data_path), 0, 0, NULL, NULL, "FILE", "training text (UTF-8)", 1, 0},
    {"--checkpoint-dir", FLAG_STR, O(o.checkpoint_dir), 0, 0, NULL, NULL, "DIR",
     "where checkpoints go (created if missing)", 1, 0},
    {"--cell", FLAG_CUSTOM, O(o.cell), 0, 0, parse_cell, show_cell, "lstm|gru|rnn", "cell type", 0,
     0},
    {"--rnn-size", FLAG_INT, O(o.rnn_size), 1, CHARRNN_MAX_HIDDEN, NULL, NULL, "N",
     "hidden units per layer", 0, 0},
    {"--num-layers", FLAG_INT, O(o.num_layers), 1, CHARRNN_MAX_LAYERS, NULL, NULL, "N", "layers", 0,
     0},
    {"--dropout", FLAG_FLOAT, O(o.dropout), 0, 0.99, NULL, NULL, "P",
     "dropout between layers, 0 <= P < 1", 0, 0},
    {"--seq-length", FLAG_INT, O(o.seq_length), 1, 100000, NULL, NULL, "N",
     "characters per window, truncated BPTT length", 0, 0},
    {"--batch-size", FLAG_INT, O(o.batch_size), 1, 100000, NULL, NULL, "N", "parallel streams", 0,
     0},
    {"--max-epochs", FLAG_DOUBLE, O(o.max_epochs), 1e-9, 1e9, NULL, NULL, "E",
     "passes over the training data", 0, 0},
    {"--max-iters", FLAG_LONG, O(o.max_iters), 0, BIG, NULL, NULL, "N",
     "stop after N iterations (0 = by epochs)", 1, 0},
    {"--learning-rate", FLAG_FLOAT, O(o.learning_rate), 1e-12, 10.0, NULL, NULL, "LR", "", 0, 0},
    {"--optimizer", FLAG_CUSTOM, O(o.optimizer), 0, 0, parse_optimizer, show_optimizer,
     "adam|rmsprop", "", 0, 0},
    {"--lr-decay", FLAG_FLOAT, O(o.lr_decay), 1e-6, 1.0, NULL, NULL, "F",
     "multiply the rate by F every epoch ...", 0, 0},
    {"--lr-decay-after", FLAG_DOUBLE, O(o.lr_decay_after), 0, 1e9, NULL, NULL, "E",
     "... from epoch E on", 0, 0},
    {"--grad-clip", FLAG_FLOAT, O(o.grad_clip), 0, 1e9, NULL, NULL, "C",
     "clamp gradients to [-C, C], 0 = off", 0, 0},
    {"--train-frac", FLAG_DOUBLE, O(o.train_frac), 1e-9, 1.0, NULL, NULL, "F",
     "first F of the text trains", 0, 0},
    {"--val-frac", FLAG_DOUBLE, O(o.val_frac), 0, 1.0, NULL, NULL, "F",
     "next F validates; the rest is test", 0, 0},
    {"--eval-every", FLAG_LONG, O(o.eval_every), 1, BIG, NULL, NULL, "N",
     "validate and checkpoint every N iterations", 0, 0},
    {"--stream-eval-chars", FLAG_LONG, O(o.stream_eval_chars), 0, BIG, NULL, NULL, "N",
     "each validation also reads the first N characters of the\n"
     "validation text as one stream, as a server does;\n0 = off",
     0, 0},
    {"--seed", FLAG_U64, O(o.seed), 0, 0, NULL, NULL, "N", "random seed", 0, 0},
    {"--init-range", FLAG_FLOAT, O(o.init.range), 0, 10.0, NULL, NULL, "R",
     "initial weights uniform in [-R, R]; 0 = 1/sqrt(rnn-size),\nPyTorch's default", 0, 0},
    {"--forget-bias", FLAG_CUSTOM, O(o.init.forget_bias), 0, 0, parse_forget_bias, show_forget_bias,
     "F|none", "LSTM: forget-gate part of bias_ih set to F; none = left\nas drawn", 0, 0},
    {"--init-from", FLAG_STR, O(o.init_from), 0, 0, NULL, NULL, "FILE",
     "start from a checkpoint (resumes exactly if it has state)", 1, 0},
    {"--publish", FLAG_STR, O(o.publish), 0, 0, NULL, NULL, "PATH",
     "atomically publish the best model (slim) to PATH", 1, 0},
    {"--publish-dtype", FLAG_CUSTOM, O(o.publish_dtype), 0, 0, parse_dtype, NULL, "T",
     "f32 (default), bf16 or int8: the published file's weights", 1, 0},
    {"--threads", FLAG_INT, O(threads), 0, 8, NULL, NULL, "N",
     "threads, each training a share of the batch (0 = cores,\n"
     "at most 8); deterministic for a given N\n"
     "(under mpirun: per rank; R ranks x N threads give the\n"
     "same bits as one process with R*N threads)",
     1, 0},
    {"--precision", FLAG_CUSTOM, O(o.precision), 0, 0, parse_precision, show_precision, "f32|bf16",
     "the recurrent layers' products: f32, or bf16 operands\n"
     "summed in f32 (CPUs with AVX512-BF16; weights, optimizer\n"
     "and checkpoints stay f32)",
     0, 0},
    {"--log", FLAG_STR, O(log_path), 0, 0, NULL, NULL, "FILE",
     "also write one JSON object per line to FILE", 1, 0},
    {"--print-every", FLAG_LONG, O(u.print_every), 1, 1e9, NULL, NULL, "N",
     "JSON progress every N iterations", 0, 0},
    {"--quiet", FLAG_SWITCH, O(u.quiet), 0, 0, NULL, NULL, NULL, "no progress on stderr", 1, 0},
};
#define NROWS (sizeof rows / sizeof rows[0])
_Static_assert(NROWS <= sizeof(((opts *)0)->seen), "opts.seen holds a byte per row");

static opts defaults(const dist *d)
{
    return (opts){
        charrnn_train_defaults(), {isatty(2), 0, 10, NULL, -1.0, d, 0, "f32", 0}, 0, NULL, {0}};
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: charrnn-train --data FILE --checkpoint-dir DIR [options]\n"
            "\n"
            "Trains a multi-layer LSTM/GRU/RNN on a UTF-8 text file, one character at a time,\n"
            "and writes safetensors checkpoints (lm_<cell>_epoch<E>_<val>.safetensors,\n"
            "best.safetensors, latest.safetensors). SIGINT/SIGTERM/SIGUSR1: finish the step,\n"
            "save, exit 0 (under mpirun, send SIGUSR1: mpirun forwards it and ends cleanly).\n"
            "\n");
    const opts d = defaults(NULL);
    flag_table_usage(f, rows, NROWS, &d);
    fprintf(f, "  --help\n");
}

/* One command-line argument (args_parse's contract). */
static int flag(void *ctx, int argc, char **argv, int *i)
{
    opts *f = ctx;
    return flag_table_take(rows, NROWS, f, f->seen, argc, argv, i);
}

static int train(int argc, char **argv, const dist *d)
{
    /* Only rank 0 reports progress; the others print only their errors. */
    const int rank0 = d->comm.rank == 0;
    opts f = defaults(d);
    int pr = args_parse(argc, argv, flag, &f, rank0 ? usage : no_usage);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    charrnn_train_opts o = f.o;
    const struct {
        const char *flag;
        unsigned bit;
    } arch[] = {{"--cell", CHARRNN_GIVEN_CELL},
                {"--rnn-size", CHARRNN_GIVEN_RNN_SIZE},
                {"--num-layers", CHARRNN_GIVEN_NUM_LAYERS}};
    for (size_t k = 0; k < sizeof arch / sizeof arch[0]; k++)
        if (flag_table_seen(rows, NROWS, f.seen, arch[k].flag))
            o.given |= arch[k].bit;
    ui u = f.u;
    u.test_frac = 1.0 - o.train_frac - o.val_frac;
    u.quiet |= !rank0;
    int threads = f.threads;
    const char *log_path = f.log_path;
    if (!o.data_path || !o.checkpoint_dir) {
        fprintf(stderr, "charrnn-train: --data and --checkpoint-dir are required (see --help)\n");
        return 2;
    }
    if (o.train_frac + o.val_frac > 1.0 + 1e-9) {
        fprintf(stderr, "charrnn-train: --train-frac + --val-frac must be at most 1\n");
        return 2;
    }
    char kerr[CHARRNN_ERR_MAX]; /* CHARRNN_KERNEL picks the GEMM's instruction set too */
    if (charrnn_kernel_init(kerr, sizeof kerr)) {
        fprintf(stderr, "charrnn-train: CHARRNN_KERNEL: %s\n", kerr);
        return 2;
    }
    if (charrnn_precision_ready(o.precision, kerr, sizeof kerr)) {
        fprintf(stderr, "charrnn-train: --precision %s: %s\n", charrnn_precision_name(o.precision),
                kerr);
        return 2;
    }
    if (log_path && rank0 && !(u.log = fopen(log_path, "a"))) {
        perror(log_path);
        return 1;
    }
    /* Threads run data-parallel shards of the batch, each GEMM single-threaded
     * (gemm.h): the per-step products are too small to split across threads
     * (a wake-up and a barrier per call); shards meet once per window. */
    if (threads == 0) { /* all cores, shared with this host's other ranks */
        long n = sysconf(_SC_NPROCESSORS_ONLN) / d->local_size;
        threads = n > 0 ? (int)(n < 8 ? n : 8) : 1;
    }
    o.threads = u.threads = threads;
    u.precision = charrnn_precision_name(o.precision);
    o.comm = d->comm.size > 1 ? &d->comm : NULL;
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
