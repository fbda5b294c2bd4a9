/* Request ids: the client's X-Request-Id when it is sane (1..REQUEST_ID_MAX
 * characters of [A-Za-z0-9._:@+/=-]), else a fresh random one (32 lowercase
 * hex digits). Returned on every response, written in the access log, and
 * the tail of a /v1 completion's id. */
#ifndef CHARRNN_SERVE_REQUEST_ID_H
#define CHARRNN_SERVE_REQUEST_ID_H

#define REQUEST_ID_MAX 128

/* 1 if given may be used as it is. */
int request_id_valid(const char *given);
/* Writes the id to use into out (REQUEST_ID_MAX + 1 bytes). given may be NULL. */
void request_id_assign(const char *given, char *out);

#endif
