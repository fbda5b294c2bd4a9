/* Server-sent events, shared by the streaming endpoints (/sample and
 * /v1/completions with stream): a response whose reader asks the endpoint
 * for one event at a time, in the connection's own thread (it may block). */
#ifndef CHARRNN_SERVE_SSE_H
#define CHARRNN_SERVE_SSE_H

#include "server.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* Makes c's next event pending (sse_set_json, sse_set_text, sse_keepalive):
 * 1 when one is pending, 0 at the end of the stream, -1 to abort it. */
typedef int (*sse_next_fn)(req_ctx *c);

/* Queues the 200 event-stream response; next is called whenever the pending
 * event has been handed to MHD. The response holds a reference to c. */
enum MHD_Result sse_start(req_ctx *c, sse_next_fn next);

/* "data: <o as JSON>\n\n" becomes the pending event; o is deleted. 0 or -1. */
int sse_set_json(req_ctx *c, cJSON *o);
/* "data: <s>\n\n" becomes the pending event; takes s (NULL: -1). 0 or -1. */
int sse_set_text(req_ctx *c, char *s);
/* When no event went out for the keep-alive interval, a comment becomes the
 * pending event: 1; 0 when none is due; -1 out of memory. */
int sse_keepalive(req_ctx *c);
/* Sleeps until 10 ms have passed since c's last event, so that fast output
 * coalesces into fewer, larger events (called before making the next one). */
void sse_pace(req_ctx *c);

/* Length of the longest prefix of s[0..n) made of whole UTF-8 characters. */
size_t utf8_whole(const char *s, size_t n);

#endif
