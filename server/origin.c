/* See origin.h. */
#include "origin.h"

#include "echo.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int origin_valid(const char *o)
{
    size_t skip = !strncasecmp(o, "http://", 7) ? 7 : !strncasecmp(o, "https://", 8) ? 8 : 0;
    if (!skip || !o[skip] || strlen(o) > 255)
        return 0;
    for (const char *p = o + skip; *p; p++)
        if (*p == '/' || *p == '?' || *p == '#' || *p == '@' || (unsigned char)*p <= ' ')
            return 0;
    return 1;
}

int origin_allowed(const char *list, const char *origin)
{
    size_t n = strlen(origin);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, " ");
        if (k == n && !strncasecmp(p, origin, n))
            return 1;
        p += k;
        p += strspn(p, " ");
    }
    return 0;
}

/* 1 if host (a Host header value: name or address, optional port) names
 * this machine's loopback interface. */
static int host_is_loopback(const char *host)
{
    char h[256];
    size_t len;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (!close || (close[1] && close[1] != ':'))
            return 0;
        len = (size_t)(close - host - 1);
        if (len >= sizeof h)
            return 0;
        memcpy(h, host + 1, len);
        h[len] = '\0';
        struct in6_addr a;
        return inet_pton(AF_INET6, h, &a) == 1 &&
            (IN6_IS_ADDR_LOOPBACK(&a) || (IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127));
    }
    len = strcspn(host, ":");
    if (len == 0 || len >= sizeof h)
        return 0;
    memcpy(h, host, len);
    h[len] = '\0';
    if (h[len - 1] == '.') /* the absolute form of a name */
        h[--len] = '\0';
    if (!strcasecmp(h, "localhost"))
        return 1;
    if (len > 10 && !strcasecmp(h + len - 10, ".localhost"))
        return 1; /* RFC 6761: always the loopback interface */
    struct in_addr a;
    return inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* 1 if origin is scheme://host for this request's Host. */
static int same_origin(const char *origin, const char *host)
{
    if (!host)
        return 0;
    size_t skip = !strncasecmp(origin, "http://", 7) ? 7
        : !strncasecmp(origin, "https://", 8)        ? 8
                                                     : 0;
    return skip && !strcasecmp(origin + skip, host);
}

int origin_check(struct MHD_Connection *conn, int loopback_listener, const char *allow_list,
                 int *cors, char *msg, size_t n)
{
    *cors = 0;
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    char shown[101];
    if (loopback_listener && host && !host_is_loopback(host)) {
        snprintf(msg, n,
                 "Host '%s' is not a loopback name or address: this daemon listens on "
                 "loopback only",
                 echo_str(shown, sizeof shown, host));
        return 403;
    }
    if (!origin)
        return 0;
    if (origin_allowed(allow_list, origin)) {
        *cors = 1;
        return 0;
    }
    if (same_origin(origin, host))
        return 0;
    snprintf(msg, n, "cross-origin request from '%s' refused (allow it with --cors-origin)",
             echo_str(shown, sizeof shown, origin));
    return 403;
}
