/* Load generator for charrnn-serve: N keep-alive clients POST /sample in a
 * loop for D seconds (loopback only), each request with a fixed length and a
 * distinct seed. Prints one JSON line: requests, errors, seconds, requests/s,
 * generated chars/s, p50/p99/max latency in ms.
 *
 * usage: load_client PORT CLIENTS SECONDS LENGTH [MODEL]
 *
 * A client issues no new request after SECONDS; requests in flight then
 * finish and are counted, and the rates divide by the time until the last
 * one ended. An error is a failed connect/send/receive or a status other
 * than 200 (the client then reconnects). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int id;
    double *lat; /* (cap) latency of each successful request, seconds */
    size_t n, cap;
    long errors, chars;
} client;

static int g_port, g_length;
static double g_t0, g_deadline;
static const char *g_model;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int connect_loopback(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = 120};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += k, n -= (size_t)k;
    }
    return 0;
}

/* recv() of up to n bytes, retried when a signal interrupts it; <= 0 at the
 * end of the stream or on an error. */
static ssize_t recv_retry(int fd, char *p, size_t n)
{
    ssize_t k;
    do
        k = recv(fd, p, n, 0);
    while (k < 0 && errno == EINTR);
    return k;
}

/* One request/response on fd. Returns the HTTP status (0 on I/O failure);
 * *keep is 0 when the server closes the connection. Counts generated chars. */
static int one_request(int fd, uint64_t seed, int *keep, long *chars)
{
    char body[256], req[512];
    int bl = snprintf(body, sizeof body, "{\"length\":%d,\"seed\":%llu%s%s%s}", g_length,
                      (unsigned long long)seed, g_model ? ",\"model\":\"" : "",
                      g_model ? g_model : "", g_model ? "\"" : "");
    int rl = snprintf(req, sizeof req,
                      "POST /sample HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                      bl, body);
    if (send_all(fd, req, (size_t)rl))
        return 0;
    static __thread char buf[1 << 16];
    size_t len = 0;
    char *hend = NULL;
    while (!hend) {
        if (len + 1 >= sizeof buf)
            return 0;
        ssize_t k = recv_retry(fd, buf + len, sizeof buf - 1 - len);
        if (k <= 0)
            return 0;
        len += (size_t)k;
        buf[len] = 0;
        hend = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    long clen = -1;
    *keep = 1;
    for (char *line = strstr(buf, "\r\n") + 2; line < hend; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            clen = strtol(line + 15, NULL, 10);
        else if (strncasecmp(line, "Connection:", 11) == 0 && strcasestr(line, "close") &&
                 strcasestr(line, "close") < strstr(line, "\r\n"))
            *keep = 0;
    }
    if (clen < 0)
        return 0; /* the server always sends Content-Length for non-streamed bodies */
    size_t need = (size_t)(hend + 4 - buf) + (size_t)clen;
    if (need >= sizeof buf)
        return 0;
    while (len < need) {
        ssize_t k = recv_retry(fd, buf + len, need - len);
        if (k <= 0)
            return 0;
        len += (size_t)k;
    }
    buf[len] = 0;
    const char *g = strstr(hend, "\"generated_chars\":");
    if (status == 200 && g)
        *chars += strtol(g + 18, NULL, 10);
    return status;
}

static void *run_client(void *arg)
{
    client *c = arg;
    int fd = -1;
    uint64_t seq = 0;
    while (now() < g_deadline) {
        if (fd < 0 && (fd = connect_loopback()) < 0) {
            c->errors++;
            usleep(10000);
            continue;
        }
        int keep = 0;
        double t = now();
        long chars = 0;
        int st = one_request(fd, ((uint64_t)c->id << 32) | seq++, &keep, &chars);
        double dt = now() - t;
        if (st == 200) {
            if (c->n == c->cap) {
                c->cap = c->cap ? 2 * c->cap : 1024;
                c->lat = realloc(c->lat, c->cap * sizeof *c->lat);
                if (!c->lat)
                    abort();
            }
            c->lat[c->n++] = dt;
            c->chars += chars;
        } else {
            c->errors++;
        }
        if (st != 200 || !keep) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s PORT CLIENTS SECONDS LENGTH [MODEL]\n", argv[0]);
        return 2;
    }
    g_port = atoi(argv[1]);
    int nc = atoi(argv[2]);
    double secs = atof(argv[3]);
    g_length = atoi(argv[4]);
    g_model = argc > 5 ? argv[5] : NULL;
    if (g_port <= 0 || nc <= 0 || secs <= 0 || g_length <= 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    client *cs = calloc((size_t)nc, sizeof *cs);
    pthread_t *th = calloc((size_t)nc, sizeof *th);
    if (!cs || !th)
        return 1;
    g_t0 = now();
    g_deadline = g_t0 + secs;
    for (int i = 0; i < nc; i++) {
        cs[i].id = i + 1;
        if (pthread_create(&th[i], NULL, run_client, &cs[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    for (int i = 0; i < nc; i++)
        pthread_join(th[i], NULL);
    double elapsed = now() - g_t0;
    size_t total = 0;
    long errors = 0, chars = 0;
    for (int i = 0; i < nc; i++)
        total += cs[i].n, errors += cs[i].errors, chars += cs[i].chars;
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < nc; i++) {
        memcpy(all + k, cs[i].lat, cs[i].n * sizeof *all);
        k += cs[i].n;
        free(cs[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_double);
    printf("{\"clients\":%d,\"length\":%d,\"requests\":%zu,\"errors\":%ld,\"seconds\":%.3f,"
           "\"req_per_s\":%.2f,\"chars_per_s\":%.1f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,"
           "\"max_ms\":%.1f}\n",
           nc, g_length, total, errors, elapsed, (double)total / elapsed, (double)chars / elapsed,
           pct(all, total, 0.50) * 1e3, pct(all, total, 0.99) * 1e3,
           total ? all[total - 1] * 1e3 : 0.0);
    free(all);
    free(cs);
    free(th);
    return 0;
}
