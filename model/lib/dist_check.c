/* The agreement checks of a data-parallel run (dist_check.h). Every rank
 * gathers every rank's record and judges them itself: the verdict and its
 * message are the same everywhere without another round trip. */
#include "dist_check.h"

#include "charrnn/status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct record {
    char sha256[65];
    char options[512];
    uint64_t vocab_size, vocab_digest, param_digest;
    int32_t threads;
} record;

static const char *host(const charrnn_comm *c, int r)
{
    return c->hosts && c->hosts[r] ? c->hosts[r] : "?";
}

static record *gather(const charrnn_comm *c, const record *mine)
{
    record *all = calloc((size_t)c->size, sizeof *all);
    if (all && charrnn_comm_allgather(c, mine, all, sizeof *mine)) {
        free(all);
        return NULL;
    }
    return all;
}

/* "ranks 1 (b), 2 (c)": the ranks whose field differs from rank 0's. */
static void list_ranks(const charrnn_comm *c, const int *differs, char *buf, size_t n)
{
    size_t len = 0;
    int count = 0;
    for (int r = 1; r < c->size; r++)
        count += differs[r];
    len += (size_t)snprintf(buf, n, "rank%s", count > 1 ? "s" : "");
    for (int r = 1, first = 1; r < c->size && len < n; r++) {
        if (!differs[r])
            continue;
        len += (size_t)snprintf(buf + len, n - len, "%s %d (%s)", first ? "" : ",", r, host(c, r));
        first = 0;
    }
}

static int mismatch(const charrnn_comm *c, int *differs, int status, const char *what,
                    const char *theirs, const char *ours, char *err, size_t errlen)
{
    char ranks[256];
    list_ranks(c, differs, ranks, sizeof ranks);
    return charrnn_fail(err, errlen, status, "%s %s than rank 0 (%s)%s%s%s%s", ranks, what,
                        host(c, 0), theirs ? ": " : "", theirs ? theirs : "", theirs ? " vs " : "",
                        theirs ? ours : "");
}

static uint64_t vocab_digest(const charrnn_vocab *v)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < charrnn_vocab_size(v); i++) {
        h ^= charrnn_vocab_codepoint(v, i);
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The first "name=value" word of a that differs from b's, into out. */
static void first_difference(const char *a, const char *b, char *out, size_t n)
{
    size_t i = 0;
    while (a[i] && a[i] == b[i])
        i++;
    while (i > 0 && a[i - 1] != ' ') /* back to the word's start */
        i--;
    snprintf(out, n, "%.*s", (int)strcspn(a + i, " "), a + i);
}

int charrnn_dist_check_start(const charrnn_comm *c, const char *sha256, const charrnn_vocab *v,
                             const char *options, const float *params, size_t nparams, int threads,
                             char *err, size_t errlen)
{
    record mine = {.vocab_size = charrnn_vocab_size(v),
                   .vocab_digest = vocab_digest(v),
                   .param_digest = charrnn_comm_digest(params, nparams),
                   .threads = threads};
    snprintf(mine.sha256, sizeof mine.sha256, "%s", sha256);
    snprintf(mine.options, sizeof mine.options, "%s", options);
    record *all = gather(c, &mine);
    if (!all)
        return charrnn_fail(err, errlen, CHARRNN_EIO, "the ranks could not exchange their data");
    int *d = calloc((size_t)c->size, sizeof *d), rc = CHARRNN_OK, any = 0;
    if (!d) {
        free(all);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    char theirs[32], ours[32];
    for (int r = 1; r < c->size; r++)
        any |= d[r] = strcmp(all[r].sha256, all[0].sha256) != 0;
    if (any) {
        int r = 1;
        while (!d[r])
            r++;
        snprintf(theirs, sizeof theirs, "sha256 %.12s...", all[r].sha256);
        snprintf(ours, sizeof ours, "%.12s...", all[0].sha256);
        rc = mismatch(c, d, CHARRNN_EINVAL, "read other training data", theirs, ours, err, errlen);
    }
    for (int r = 1; r < c->size && rc == CHARRNN_OK; r++)
        any |= d[r] =
            all[r].vocab_size != all[0].vocab_size || all[r].vocab_digest != all[0].vocab_digest;
    if (rc == CHARRNN_OK && any)
        rc = mismatch(c, d, CHARRNN_EINVAL, "have another vocabulary", NULL, NULL, err, errlen);
    for (int r = 1; r < c->size && rc == CHARRNN_OK; r++)
        any |= d[r] = strcmp(all[r].options, all[0].options) != 0;
    if (rc == CHARRNN_OK && any) {
        int r = 1;
        while (!d[r])
            r++;
        char t[128], o[128];
        first_difference(all[r].options, all[0].options, t, sizeof t);
        first_difference(all[0].options, all[r].options, o, sizeof o);
        rc = mismatch(c, d, CHARRNN_EINVAL, "run with other options", t, o, err, errlen);
    }
    for (int r = 1; r < c->size && rc == CHARRNN_OK; r++)
        any |= d[r] = all[r].threads != all[0].threads;
    if (rc == CHARRNN_OK && any) {
        int r = 1;
        while (!d[r])
            r++;
        snprintf(theirs, sizeof theirs, "%d", all[r].threads);
        snprintf(ours, sizeof ours, "%d", all[0].threads);
        rc = mismatch(c, d, CHARRNN_EINVAL, "run another number of --threads", theirs, ours, err,
                      errlen);
    }
    for (int r = 1; r < c->size && rc == CHARRNN_OK; r++)
        any |= d[r] = all[r].param_digest != all[0].param_digest;
    if (rc == CHARRNN_OK && any)
        rc = mismatch(c, d, CHARRNN_EINVAL,
                      "start from other parameters (another --init-from file?)", NULL, NULL, err,
                      errlen);
    free(d), free(all);
    return rc;
}

int charrnn_dist_check_params(const charrnn_comm *c, const float *params, size_t nparams, long iter,
                              char *err, size_t errlen)
{
    record mine = {.param_digest = charrnn_comm_digest(params, nparams)};
    record *all = gather(c, &mine);
    if (!all)
        return charrnn_fail(err, errlen, CHARRNN_EIO, "the ranks could not exchange checksums");
    int *d = calloc((size_t)c->size, sizeof *d), any = 0, rc = CHARRNN_OK;
    if (!d) {
        free(all);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    for (int r = 1; r < c->size; r++)
        any |= d[r] = all[r].param_digest != all[0].param_digest;
    if (any) {
        char what[96];
        snprintf(what, sizeof what, "hold other parameters after iteration %ld", iter);
        rc = mismatch(c, d, CHARRNN_EFORMAT, what, NULL, NULL, err, errlen);
    }
    free(d), free(all);
    return rc;
}
