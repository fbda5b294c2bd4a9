/* See conn_guard.h. The accept check and the start notification both run in
 * libmicrohttpd's listening thread, one connection after the other, so a
 * count checked at accept is still right when the connection starts. */
#define _GNU_SOURCE
#include "conn_guard.h"

#include "charrnn/clock.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#define RESERVED_SECONDS 2.0 /* a reserved slot's request must arrive in this */
#define TICK_MS 100          /* how often deadlines are checked */

typedef struct slot {
    uint8_t key[16];
    int fd;
    struct sockaddr_storage peer; /* to recognise the socket behind fd */
    socklen_t peer_len;
    int reserved;
    double budget;         /* seconds a request may take to arrive */
    int waiting;           /* a request is (or may be) arriving */
    double deadline;       /* when waiting */
    int cut;               /* shut down by the deadline */
    LIST_ENTRY(slot) link; /* in the guard's slots */
} slot;

struct conn_guard {
    int max_connections, per_addr;
    double request_seconds;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    LIST_HEAD(, slot) slots; /* every open connection */
    int total, stop;
    pthread_t thread;
};

int conn_guard_key(const struct sockaddr *sa, uint8_t key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 1;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            memcpy(key, a->s6_addr + 12, 4);
        else
            memcpy(key + 4, a->s6_addr, 8), key[0] = 6; /* the /64, apart from IPv4 keys */
        return 1;
    }
    return 0;
}

/* Connections of one key. Under mu. */
static int count_key(const conn_guard *g, const uint8_t key[16])
{
    int n = 0;
    const slot *s;
    LIST_FOREACH(s, &g->slots, link)
    {
        n += !memcmp(s->key, key, 16);
    }
    return n;
}

enum MHD_Result conn_guard_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    conn_guard *g = cls;
    (void)len;
    uint8_t key[16];
    if (g->per_addr <= 0 || !conn_guard_key(addr, key))
        return MHD_YES;
    pthread_mutex_lock(&g->mu);
    int ok = count_key(g, key) < g->per_addr;
    pthread_mutex_unlock(&g->mu);
    return ok ? MHD_YES : MHD_NO;
}

void conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode toe)
{
    conn_guard *g = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        slot *s = calloc(1, sizeof *s);
        *socket_context = s;
        if (!s)
            return;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            conn_guard_key(ci->client_addr, s->key);
            s->peer_len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                 : sizeof(struct sockaddr_in);
            memcpy(&s->peer, ci->client_addr, s->peer_len);
        }
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        s->fd = ci ? ci->connect_fd : -1;
        pthread_mutex_lock(&g->mu);
        s->reserved = ++g->total > g->max_connections;
        s->budget = s->reserved ? RESERVED_SECONDS : g->request_seconds;
        s->waiting = 1;
        s->deadline = charrnn_clock_mono() + s->budget;
        LIST_INSERT_HEAD(&g->slots, s, link);
        pthread_mutex_unlock(&g->mu);
        return;
    }
    slot *s = *socket_context; /* MHD_CONNECTION_NOTIFY_CLOSED: before the socket closes */
    *socket_context = NULL;
    if (!s)
        return;
    pthread_mutex_lock(&g->mu);
    g->total--;
    LIST_REMOVE(s, link);
    pthread_mutex_unlock(&g->mu);
    free(s);
}

static slot *slot_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

int conn_guard_reserved(struct MHD_Connection *conn)
{
    slot *s = slot_of(conn);
    return s && s->reserved; /* set before the connection's thread starts */
}

/* The deadline fields, written from the connection's thread and read by the
 * deadline thread. */
static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;

/* Whether a request may be arriving on conn; when one may, its deadline
 * starts now. */
static void set_waiting(struct MHD_Connection *conn, int waiting)
{
    slot *s = slot_of(conn);
    if (!s)
        return;
    pthread_mutex_lock(&slot_mu);
    s->waiting = waiting;
    if (waiting)
        s->deadline = charrnn_clock_mono() + s->budget;
    pthread_mutex_unlock(&slot_mu);
}

void conn_guard_request_in(struct MHD_Connection *conn)
{
    set_waiting(conn, 0);
}

void conn_guard_response_out(struct MHD_Connection *conn)
{
    set_waiting(conn, 1);
}

/* Shuts down the sockets whose request did not arrive in time; libmicrohttpd
 * then sees the connection fail and closes it. The peer is compared first, so
 * a descriptor number reused by a newer connection is never touched. */
static void *deadlines(void *arg)
{
    conn_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        charrnn_clock_deadline(&ts, TICK_MS * 1e-3);
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        double now = charrnn_clock_mono();
        slot *s;
        LIST_FOREACH(s, &g->slots, link)
        {
            pthread_mutex_lock(&slot_mu);
            int late = s->waiting && !s->cut && now > s->deadline;
            pthread_mutex_unlock(&slot_mu);
            if (!late || s->fd < 0)
                continue;
            struct sockaddr_storage peer;
            socklen_t pl = sizeof peer;
            if (getpeername(s->fd, (struct sockaddr *)&peer, &pl) == 0 && pl == s->peer_len &&
                !memcmp(&peer, &s->peer, pl)) {
                shutdown(s->fd, SHUT_RDWR);
                s->cut = 1;
            }
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

conn_guard *conn_guard_create(int max_connections, int per_addr, double request_seconds)
{
    conn_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    LIST_INIT(&g->slots);
    g->max_connections = max_connections;
    g->per_addr = per_addr;
    g->request_seconds = request_seconds;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->thread, NULL, deadlines, g) != 0) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        free(g);
        return NULL;
    }
    return g;
}

void conn_guard_free(conn_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}
