/* Request framing that libmicrohttpd 0.9.75 accepts but must be refused. */
#ifndef CHARRNN_SERVE_FRAMING_H
#define CHARRNN_SERVE_FRAMING_H

#include <microhttpd.h>
#include <stddef.h>

/* 1 (with a message for the client in msg) when the request's body framing
 * is ambiguous: Transfer-Encoding together with Content-Length, a transfer
 * coding other than a single "chunked", or more than one Content-Length or
 * Transfer-Encoding header. A proxy in front may frame such a request
 * differently (request smuggling), so the answer is 400 and the connection
 * is closed (RFC 9112, 6.1 and 6.3). 0 when the framing is clear. */
int http_framing_error(struct MHD_Connection *conn, char *msg, size_t n);

#endif
