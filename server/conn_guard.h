/* Connection slots (conn_guard.c): what libmicrohttpd's own limits leave
 * open. One connection holds one thread and one slot until it closes, so:
 *  - clients are counted per IPv4 address and per IPv6 /64 (one host is
 *    usually given a whole /64; keyed on the full address, one host could
 *    take every slot);
 *  - a request must arrive whole (head and body) within a deadline, not only
 *    keep sending a byte before the idle timeout;
 *  - a few slots beyond --max-connections are kept for /healthz, /readyz and
 *    /metrics: a connection that gets one is answered 503 unless it asks for
 *    one of them, and must send its request within 2 s. */
#ifndef CHARRNN_SERVE_CONN_GUARD_H
#define CHARRNN_SERVE_CONN_GUARD_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Slots kept for the probes, on top of --max-connections. */
#define CONN_GUARD_RESERVE 8

typedef struct conn_guard conn_guard;

/* per_addr: connections per client key (0 = no limit); request_seconds: the
 * time a request may take to arrive, head and body, from the connection's
 * start or the end of the previous response. */
conn_guard *conn_guard_create(int max_connections, int per_addr, double request_seconds);
/* Stops the deadline thread; every connection must be closed (MHD stopped). */
void conn_guard_free(conn_guard *g);

/* The client key of an address: the IPv4 address (also when v4-mapped), or
 * the /64 of an IPv6 one; 16 bytes, zero-padded. 0 on another family. */
int conn_guard_key(const struct sockaddr *sa, uint8_t key[16]);

/* libmicrohttpd callbacks (MHD_start_daemon's accept policy and
 * MHD_OPTION_NOTIFY_CONNECTION, cls = the guard). */
enum MHD_Result conn_guard_accept(void *cls, const struct sockaddr *addr, socklen_t len);
void conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode toe);

/* 1 if the connection took a reserved slot. */
int conn_guard_reserved(struct MHD_Connection *conn);
/* The request has fully arrived: no deadline while it is answered. */
void conn_guard_request_in(struct MHD_Connection *conn);
/* Its response is done: the next request's deadline starts now. */
void conn_guard_response_out(struct MHD_Connection *conn);

#endif
