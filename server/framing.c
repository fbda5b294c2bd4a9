/* Request framing checks (framing.h). libmicrohttpd 0.9.75 takes a request
 * with both Transfer-Encoding: chunked and Content-Length as chunked, and
 * frames other codings by Content-Length; newer versions refuse both, as
 * RFC 9112 asks. */
#include "framing.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct framing {
    int te, cl;           /* header counts */
    const char *te_value; /* the (first) Transfer-Encoding value */
} framing;

static enum MHD_Result count(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    framing *f = cls;
    (void)kind;
    if (!strcasecmp(key, "Transfer-Encoding")) {
        if (f->te++ == 0)
            f->te_value = value ? value : "";
    } else if (!strcasecmp(key, "Content-Length")) {
        f->cl++;
    }
    return MHD_YES;
}

/* "chunked", case-insensitively, with optional surrounding blanks. */
static int is_chunked(const char *v)
{
    v += strspn(v, " \t");
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n == 7 && !strncasecmp(v, "chunked", 7);
}

int http_framing_error(struct MHD_Connection *conn, char *msg, size_t n)
{
    framing f = {0, 0, NULL};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count, &f);
    if (f.te > 0 && f.cl > 0)
        snprintf(msg, n, "a request may not have both Transfer-Encoding and Content-Length");
    else if (f.te > 1 || f.cl > 1)
        snprintf(msg, n, "more than one %s header",
                 f.te > 1 ? "Transfer-Encoding" : "Content-Length");
    else if (f.te == 1 && !is_chunked(f.te_value))
        snprintf(msg, n, "the only Transfer-Encoding accepted is chunked");
    else
        return 0;
    return 1;
}
