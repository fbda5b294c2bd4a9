/* Which browser-driven requests the daemon answers: the Host of a request to
 * a loopback listener, the Origin of every request, and the CORS answers for
 * the origins configured with --cors-origin (origin.c). */
#ifndef CHARRNN_SERVE_ORIGIN_H
#define CHARRNN_SERVE_ORIGIN_H

#include <microhttpd.h>
#include <stddef.h>

/* 1 if origin is in the allow-list (space-separated, as --cors-origin keeps it). */
int origin_allowed(const char *list, const char *origin);

/* 0 when the request may go on; else its status (403) with a message for the
 * client in msg:
 *  - on a loopback listener, a Host that is not a loopback name or address
 *    (localhost, *.localhost, 127.0.0.0/8, [::1]) is refused: a web page that
 *    rebinds its own DNS name to 127.0.0.1 reaches the daemon with its own
 *    name as Host;
 *  - a request whose Origin is neither the daemon's own (http:// or https://
 *    and the Host) nor in the allow-list is refused: any page a user visits
 *    could otherwise drive a daemon on their machine.
 * Requests without Origin (curl, scripts, probes) pass the Origin check.
 * *cors is set to 1 when the Origin is in the allow-list (the response then
 * carries Access-Control-Allow-Origin). */
int origin_check(struct MHD_Connection *conn, int loopback_listener, const char *allow_list,
                 int *cors, char *msg, size_t n);

/* The --cors-origin value check: "http(s)://host[:port]", nothing after. */
int origin_valid(const char *origin);

#endif
