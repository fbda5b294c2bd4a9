/* Client bytes echoed back: in error messages, in the access log and in any
 * other log line. Responses and log lines are JSON, which must be UTF-8; a
 * client may send any bytes (a percent-decoded path, a field name, a model
 * name, a "user"), so every echo goes through echo_text. */
#ifndef CHARRNN_SERVE_ECHO_H
#define CHARRNN_SERVE_ECHO_H

#include <stddef.h>

/* Copies len bytes of s into out (n >= 1 bytes, always NUL-terminated) as
 * valid UTF-8 without control characters: each byte that does not begin a
 * valid UTF-8 character, and each control character (< 0x20, 0x7F), is written
 * as the four ASCII characters \xNN. The copy ends before the first character
 * or escape that does not fit, never inside one. Valid text without control
 * characters is copied unchanged, so echoing an echo changes nothing.
 * Returns out. */
char *echo_text(char *out, size_t n, const char *s, size_t len);
/* echo_text of the NUL-terminated s (NULL reads as ""). */
char *echo_str(char *out, size_t n, const char *s);
/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or code points
 * above U+10FFFF). */
int utf8_valid(const char *s, size_t n);

#endif
