/* libFuzzer harness: the daemon's HTTP routes end to end, in process.
 *
 * LLVMFuzzerInitialize starts the real server (store, engine, libmicrohttpd in
 * thread-per-connection mode, the same code as charrnn-serve's main) over a
 * temporary model directory holding one tiny model. Each input is the raw byte
 * stream of one client connection: it is handed to the daemon through
 * MHD_add_connection on one end of a socketpair (the accept path without
 * TCP: no ports, no TIME_WAIT, thousands of connections a minute), written,
 * and the response read back. Everything behind the socket - routing, body
 * handling, JSON parsing, the store, sampling, streaming, metrics - runs in
 * this process under ASan/UBSan with coverage feedback.
 *
 * Reading: until a complete response (Content-Length or the last chunk) or
 * 50 ms of silence (an incomplete request the server is still waiting on),
 * then the write side is shut (the server sees EOF and closes) and the rest is
 * drained. A connection the server neither answers nor closes within 10 s is a
 * hang and aborts. A 500 response is a bug and aborts, as does a response
 * body that is not valid UTF-8 (not valid JSON, for a JSON one) and a log
 * line (the access log is on, its lines checked in place of being written)
 * that is not one UTF-8 JSON object.
 *
 * Leak checking is off for this target (-detect_leaks=0): connection threads
 * finish after the input returns, so per-input leak accounting is noise. The
 * ASan build of the test suite checks the daemon for leaks at exit. */
#define _GNU_SOURCE /* memmem */
#include "charrnn/checkpoint.h"
#include "charrnn/vocab.h"
#include "fuzz_json.h"
#include "log.h"
#include "server.h"

#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static server srv;
static char dir[] = "/tmp/charrnn-fuzz-http-XXXXXX";

static void cleanup(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/tiny.safetensors", dir);
    unlink(path);
    rmdir(dir);
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_http: %s: %s\n", what, err);
    abort();
}

/* Each log line (the access log's included) is one UTF-8 JSON object. */
static void check_log_line(const char *line, size_t len)
{
    fuzz_check_text(line, len, 1, "log line not UTF-8 JSON");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[1024];
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir))
        die("mkdtemp", "failed");
    atexit(cleanup);
    static const char text[] = "the quick brown fox jumps over the lazy dog\n\xc3\xa9\xce\xbb";
    charrnn_vocab *v = NULL;
    if (charrnn_vocab_build((const uint8_t *)text, sizeof text - 1, &v, err, sizeof err))
        die("vocab", err);
    charrnn_config mc = {CHARRNN_CELL_GRU, (int)charrnn_vocab_size(v), 8, 1};
    charrnn_model *m = NULL;
    if (charrnn_model_create(&mc, v, &m, err, sizeof err))
        die("model", err);
    for (size_t i = 0; i < m->num_params; i++)
        m->params[i] = (float)((int)(i * 2654435761u % 13) - 6) * 0.1f;
    char path[128];
    snprintf(path, sizeof path, "%s/tiny.safetensors", dir);
    if (charrnn_checkpoint_save(path, m, NULL, NULL, err, sizeof err))
        die("save", err);
    charrnn_model_free(m);

    char *args[] = {
        "fuzz", "--listen",      "127.0.0.1:0", "--models",          dir,  "--default-model",
        "tiny", "--admin-token", "tok",         "--max-length",      "32", "--max-prime",
        "32",   "--max-body",    "2048",        "--timeout",         "2",  "--poll-interval",
        "0",    "--access-log",  "on",          "--workers",         "1",  "--max-concurrent",
        "4",    "--max-queue",   "4",           "--max-connections", "64", NULL};
    if (serve_config_parse(&srv.cfg, (int)(sizeof args / sizeof *args) - 1, args, err, sizeof err))
        die("config", err);
    srv.listen_fd = -1;
    if (store_open(srv.cfg.models, &srv.store, err, sizeof err))
        die("store", err);
    if (store_scan(srv.store, 0, err, sizeof err) < 0)
        die("scan", err);
    srv.cache = state_cache_create(1 << 20); /* small: inputs also exercise eviction */
    srv.keys = api_keys_create();
    engine_config ec = {srv.cfg.max_concurrent, srv.cfg.max_queue, srv.cfg.workers,
                        srv.cfg.max_batch,      srv.cfg.timeout,   srv.cfg.row_split,
                        srv.cfg.worker_nice,    srv.cache,         srv.cfg.max_client_share};
    srv.met = metrics_create();
    if (!srv.met || engine_create(&ec, &srv.eng))
        die("engine", "failed");
    log_set_sink(check_log_line);
    if (http_start(&srv, err, sizeof err))
        die("http", err);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* 1 once buf holds a whole response: headers, then Content-Length bytes or the
 * last chunk of a chunked body. */
static int response_complete(const char *buf, size_t n)
{
    const char *end = memmem(buf, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - buf) + 4;
    const char *cl = memmem(buf, head, "Content-Length: ", 16);
    if (cl)
        return n - head >= strtoul(cl + 16, NULL, 10);
    if (memmem(buf, head, "chunked", 7))
        return n >= 5 && !memcmp(buf + n - 5, "0\r\n\r\n", 5);
    return 0;
}

/* Every body is valid UTF-8 and a JSON one parses. Responses follow each
 * other (pipelining); a HEAD answer has a Content-Length and no body, told
 * apart by the next status line starting right after the headers. A chunked
 * body (a stream) is the last: its rest is checked as UTF-8 only. */
static void check_bodies(const char *buf, size_t n)
{
    const char *p = buf, *end = buf + n;
    while (end - p > 7 && !memcmp(p, "HTTP/1.", 7)) {
        const char *h = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!h)
            return;
        size_t head = (size_t)(h - p) + 4;
        const char *body = p + head, *cl = memmem(p, head, "Content-Length: ", 16);
        int json = memmem(p, head, "application/json", 16) != NULL;
        if (!cl) {
            fuzz_check_text(body, (size_t)(end - body), 0, "a response body is not UTF-8");
            return;
        }
        size_t len = strtoul(cl + 16, NULL, 10);
        if (len > (size_t)(end - body) || (end - body > 7 && !memcmp(body, "HTTP/1.", 7))) {
            p = body; /* HEAD, or the body was cut short by the read */
            continue;
        }
        fuzz_check_text(body, len, json, "a response body is not UTF-8 (JSON)");
        p = body + len;
    }
}

static void check_response(const char *buf, size_t n)
{
    check_bodies(buf, n);
    /* Every response the daemon writes starts with a status line; none is a 500. */
    for (size_t off = 0; off + 12 <= n;) {
        const char *p = memmem(buf + off, n - off, "HTTP/1.", 7);
        if (!p || (size_t)(p - buf) + 12 > n)
            break;
        if (p[9] == '5' && p[10] == '0' && p[11] == '0') {
            fprintf(stderr, "fuzz_http: the daemon answered 500:\n%.*s\n", (int)n, buf);
            abort();
        }
        off = (size_t)(p - buf) + 12;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return 0;
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (MHD_add_connection(srv.mhd, sv[1], (const struct sockaddr *)&peer, sizeof peer) !=
        MHD_YES) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    /* Write everything (the server reads concurrently; the buffer is large). */
    size_t off = 0;
    while (off < size) {
        ssize_t w = send(sv[0], data + off, size - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    static char buf[1 << 20];
    size_t n = 0;
    int shut = 0;
    double deadline = now() + 10;
    for (;;) {
        struct pollfd p = {.fd = sv[0], .events = POLLIN};
        int r = poll(&p, 1, shut ? 200 : 50);
        if (r == 0) {
            if (!shut) {
                shutdown(sv[0], SHUT_WR);
                shut = 1;
            }
            if (now() > deadline) {
                fprintf(stderr, "fuzz_http: the daemon neither answered nor closed in 10 s\n");
                abort();
            }
            continue;
        }
        if (r < 0)
            break;
        char tmp[65536];
        ssize_t k = recv(sv[0], tmp, sizeof tmp, 0);
        if (k <= 0)
            break;
        size_t take = (size_t)k < sizeof buf - n ? (size_t)k : sizeof buf - n;
        memcpy(buf + n, tmp, take);
        n += take;
        if (!shut && response_complete(buf, n)) {
            shutdown(sv[0], SHUT_WR);
            shut = 1;
        }
    }
    check_response(buf, n);
    close(sv[0]);
    return 0;
}
