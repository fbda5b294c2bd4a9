/* Server-sent events (sse.h). */
#include "sse.h"

#include "charrnn/clock.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEEPALIVE_SECONDS 15 /* SSE comment when no event was sent for this long */
#define EVENT_GAP 0.01       /* seconds between events: coalesces fast output */

static void set_pending(req_ctx *c, char *ev, size_t len)
{
    free(c->pending);
    c->pending = ev;
    c->pending_len = len;
    c->pending_off = 0;
    c->last_event = charrnn_clock_mono();
}

int sse_set_text(req_ctx *c, char *s)
{
    if (!s)
        return -1;
    size_t n = strlen(s);
    char *ev = malloc(n + 9);
    if (!ev) {
        free(s);
        return -1;
    }
    memcpy(ev, "data: ", 6);
    memcpy(ev + 6, s, n);
    memcpy(ev + 6 + n, "\n\n", 3);
    free(s);
    set_pending(c, ev, n + 8);
    return 0;
}

int sse_set_json(req_ctx *c, cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return sse_set_text(c, s);
}

int sse_keepalive(req_ctx *c)
{
    if (charrnn_clock_mono() - c->last_event <= KEEPALIVE_SECONDS)
        return 0;
    char *ev = strdup(": keep-alive\n\n");
    if (!ev)
        return -1;
    set_pending(c, ev, strlen(ev));
    return 1;
}

size_t utf8_whole(const char *s, size_t n)
{
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--, back++;
    if (i == 0)
        return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return back + 1 >= need ? n : i - 1;
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    req_ctx *c = cls;
    if (c->pending_off >= c->pending_len) {
        int r = c->sse_next(c);
        if (r <= 0)
            key_slot_give(c); /* before the stream's terminating chunk */
        if (r == 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (r < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = c->pending_len - c->pending_off;
    if (n > max)
        n = max;
    memcpy(out, c->pending + c->pending_off, n);
    c->pending_off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    ctx_release(cls);
}

enum MHD_Result sse_start(req_ctx *c, sse_next_fn next)
{
    c->sse_next = next;
    atomic_fetch_add(&c->refs, 1);
    c->last_event = charrnn_clock_mono();
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_reader, c, sse_free);
    if (!r) {
        ctx_release(c);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    add_common_headers(c, r);
    c->status = 200;
    c->responded = 1;
    enum MHD_Result ret = MHD_queue_response(c->conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

void sse_pace(req_ctx *c)
{
    double gap = EVENT_GAP - (charrnn_clock_mono() - c->last_event);
    if (gap > 0) {
        struct timespec ts = {0, (long)(gap * 1e9)};
        nanosleep(&ts, NULL);
    }
}
