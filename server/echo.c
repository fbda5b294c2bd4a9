/* Client bytes made safe to echo (echo.h). */
#include "echo.h"

#include "charrnn/vocab.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

char *echo_text(char *out, size_t n, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = charrnn_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (k > 0 && cp != 0x7F && cp >= 0x20) {
            if (o + (size_t)k >= n)
                break;
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            if (o + 4 >= n)
                break;
            snprintf(out + o, 5, "\\x%02X", (unsigned char)s[i]);
            o += 4;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

char *echo_str(char *out, size_t n, const char *s)
{
    return echo_text(out, n, s ? s : "", s ? strlen(s) : 0);
}

int utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = charrnn_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (k <= 0)
            return 0;
        i += (size_t)k;
    }
    return 1;
}
