/* API keys (api_keys.h): the parsed file, checked by digest. */
#include "api_keys.h"
#include "buf.h"

#include "charrnn/fileio.h"
#include "charrnn/sha256.h"
#include "charrnn/status.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MIN 16
#define KEY_MAX 256
#define MAX_KEYS 10000

typedef struct key {
    char label[API_KEY_LABEL_MAX + 1];
    char digest[65]; /* SHA-256 of the key, hex */
    int max_active;  /* 0: no limit */
} key;

/* Running generations per label, kept across reloads. */
typedef struct usage {
    char label[API_KEY_LABEL_MAX + 1];
    int active, max_active;
} usage;

struct api_keys {
    pthread_mutex_t mu;
    key *keys;
    size_t n;
    usage *use;
    size_t nuse, capuse;
};

api_keys *api_keys_create(void)
{
    api_keys *k = calloc(1, sizeof *k);
    if (k)
        pthread_mutex_init(&k->mu, NULL);
    return k;
}

void api_keys_free(api_keys *k)
{
    if (!k)
        return;
    free(k->keys);
    free(k->use);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

static int label_ok(const char *s, size_t n)
{
    if (n == 0 || n > API_KEY_LABEL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

/* The fields of one line "label:key[:max]" into *out; -1 with err. */
static int parse_line(const char *s, size_t n, size_t lineno, key *out, char *err, size_t errlen)
{
    const char *c1 = memchr(s, ':', n);
    if (!c1) {
        snprintf(err, errlen, "line %zu: expected label:key[:max_active]", lineno);
        return -1;
    }
    size_t ll = (size_t)(c1 - s);
    if (!label_ok(s, ll)) {
        snprintf(err, errlen, "line %zu: a label is 1..%d characters of A-Z a-z 0-9 . _ -", lineno,
                 API_KEY_LABEL_MAX);
        return -1;
    }
    const char *kp = c1 + 1, *end = s + n;
    const char *c2 = memchr(kp, ':', (size_t)(end - kp));
    size_t kl = (size_t)((c2 ? c2 : end) - kp);
    if (kl == 0) {
        snprintf(err, errlen, "line %zu: the key is empty", lineno);
        return -1;
    }
    for (size_t i = 0; i < kl; i++)
        if (kp[i] <= ' ' || kp[i] > '~') {
            snprintf(err, errlen, "line %zu: a key is printable ASCII without spaces", lineno);
            return -1;
        }
    if (kl < KEY_MIN || kl > KEY_MAX) {
        snprintf(err, errlen, "line %zu: a key is %d..%d characters (this one has %zu)", lineno,
                 KEY_MIN, KEY_MAX, kl);
        return -1;
    }
    memset(out, 0, sizeof *out);
    memcpy(out->label, s, ll);
    charrnn_sha256_hex(kp, kl, out->digest);
    if (c2) {
        char num[16];
        size_t nl = (size_t)(end - c2 - 1);
        char *e;
        long v = 0;
        if (nl > 0 && nl < sizeof num) {
            memcpy(num, c2 + 1, nl);
            num[nl] = '\0';
            v = strtol(num, &e, 10);
        }
        if (nl == 0 || nl >= sizeof num || *e || v < 1 || v > 100000 || num[0] == '+' ||
            num[0] == '-') {
            snprintf(err, errlen, "line %zu: max_active is a whole number 1..100000", lineno);
            return -1;
        }
        out->max_active = (int)v;
    }
    return 0;
}

/* Parses the file's text into keys; -1 with err. */
static int parse(const char *text, size_t len, key **out, size_t *n, char *err, size_t errlen)
{
    key *keys = NULL;
    size_t nk = 0, lineno = 0;
    for (size_t i = 0; i < len;) {
        const char *s = text + i;
        const char *nl = memchr(s, '\n', len - i);
        size_t ln = nl ? (size_t)(nl - s) : len - i;
        i += ln + (nl != NULL);
        lineno++;
        if (ln > 0 && s[ln - 1] == '\r')
            ln--;
        size_t a = 0;
        while (a < ln && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (ln > a && (s[ln - 1] == ' ' || s[ln - 1] == '\t'))
            ln--;
        if (a == ln || s[a] == '#')
            continue;
        if (memchr(s, '\0', ln) || nk == MAX_KEYS) {
            snprintf(err, errlen,
                     nk == MAX_KEYS ? "line %zu: more than 10000 keys" : "line %zu: a NUL byte",
                     lineno);
            free(keys);
            return -1;
        }
        key *g = realloc(keys, (nk + 1) * sizeof *g);
        if (!g) {
            free(keys);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        keys = g;
        if (parse_line(s + a, ln - a, lineno, &keys[nk], err, errlen)) {
            free(keys);
            return -1;
        }
        for (size_t j = 0; j < nk; j++)
            if (!strcmp(keys[j].label, keys[nk].label) ||
                !strcmp(keys[j].digest, keys[nk].digest)) {
                snprintf(err, errlen, "line %zu: %s again (first on an earlier line)", lineno,
                         !strcmp(keys[j].label, keys[nk].label) ? "the label" : "the key");
                free(keys);
                return -1;
            }
        nk++;
    }
    if (nk == 0) {
        snprintf(err, errlen, "no key in the file");
        return -1;
    }
    *out = keys;
    *n = nk;
    return 0;
}

/* The usage row of label, added if new; NULL out of memory. Under mu. */
static usage *usage_of(api_keys *k, const char *label)
{
    for (size_t i = 0; i < k->nuse; i++)
        if (!strcmp(k->use[i].label, label))
            return &k->use[i];
    if (buf_reserve(&k->use, &k->capuse, k->nuse + 1, sizeof *k->use))
        return NULL;
    usage *u = &k->use[k->nuse++];
    memset(u, 0, sizeof *u);
    snprintf(u->label, sizeof u->label, "%s", label);
    return u;
}

int api_keys_load(api_keys *k, const char *path, size_t *count, char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    int rc = charrnn_file_read(path, 0, &buf, &len, NULL, err, errlen);
    if (rc != CHARRNN_OK)
        return CHARRNN_EIO;
    key *keys;
    size_t n;
    char why[256];
    rc = parse((const char *)buf, len, &keys, &n, why, sizeof why);
    free(buf);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, why);
        return CHARRNN_EFORMAT;
    }
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->nuse; i++)
        k->use[i].max_active = 0; /* a revoked label keeps its count, no new work */
    for (size_t i = 0; i < n; i++) {
        usage *u = usage_of(k, keys[i].label);
        if (u)
            u->max_active = keys[i].max_active;
    }
    free(k->keys);
    k->keys = keys;
    k->n = n;
    pthread_mutex_unlock(&k->mu);
    if (count)
        *count = n;
    return CHARRNN_OK;
}

int api_keys_enabled(api_keys *k)
{
    pthread_mutex_lock(&k->mu);
    int on = k->n > 0;
    pthread_mutex_unlock(&k->mu);
    return on;
}

int api_keys_check(api_keys *k, const char *presented, size_t len, char *label)
{
    char d[65];
    charrnn_sha256_hex(presented, len, d);
    int found = -1;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->n; i++) {
        unsigned char diff = 0;
        for (size_t b = 0; b < 64; b++)
            diff |= (unsigned char)(d[b] ^ k->keys[i].digest[b]);
        /* no early exit: every key is compared whatever matched */
        found = diff == 0 ? (int)i : found;
    }
    if (found >= 0)
        memcpy(label, k->keys[found].label, API_KEY_LABEL_MAX + 1);
    pthread_mutex_unlock(&k->mu);
    return found >= 0 ? 0 : -1;
}

int api_keys_take(api_keys *k, const char *label)
{
    pthread_mutex_lock(&k->mu);
    usage *u = usage_of(k, label);
    int ok = u && (u->max_active == 0 || u->active < u->max_active);
    if (ok)
        u->active++;
    pthread_mutex_unlock(&k->mu);
    return ok ? 0 : -1;
}

void api_keys_give(api_keys *k, const char *label)
{
    pthread_mutex_lock(&k->mu);
    usage *u = usage_of(k, label);
    if (u && u->active > 0)
        u->active--;
    pthread_mutex_unlock(&k->mu);
}
