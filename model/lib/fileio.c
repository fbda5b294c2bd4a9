/* See charrnn/fileio.h. */
#define _GNU_SOURCE /* mkostemp */
#include "charrnn/fileio.h"

#include "charrnn/status.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int charrnn_file_open(const char *path, int flags, int *fd, struct stat *st, char *err,
                      size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer;
     * on a regular file it changes nothing. */
    int oflags =
        O_RDONLY | O_NONBLOCK | O_CLOEXEC | (flags & CHARRNN_FILE_NOFOLLOW ? O_NOFOLLOW : 0);
    *fd = open(path, oflags);
    if (*fd < 0)
        return charrnn_fail(err, errlen, errno == ENOENT ? CHARRNN_ENOTFOUND : CHARRNN_EIO,
                            "cannot open %s: %s", path, strerror(errno));
    if (fstat(*fd, st) || !S_ISREG(st->st_mode)) {
        close(*fd);
        *fd = -1;
        return charrnn_fail(err, errlen, CHARRNN_EIO, "%s is not a regular file", path);
    }
    return CHARRNN_OK;
}

int charrnn_file_read(const char *path, int flags, uint8_t **buf, size_t *len, struct stat *st,
                      char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    struct stat own;
    st = st ? st : &own;
    int fd;
    int rc = charrnn_file_open(path, flags, &fd, st, err, errlen);
    if (rc)
        return rc;
    const size_t n = (size_t)st->st_size;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory for the %zu bytes of %s", n,
                            path);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = charrnn_fail(err, errlen, CHARRNN_EIO, "cannot read %s: %s", path,
                              r < 0 ? strerror(errno) : "the file shrank while it was read");
            free(b);
            close(fd);
            return rc;
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = n;
    return CHARRNN_OK;
}

int charrnn_file_write_atomic(const char *path, int (*produce)(FILE *f, void *ctx), void *ctx,
                              char *err, size_t errlen)
{
    char dir[PATH_MAX];
    if (!charrnn_path_split(path, dir, sizeof dir))
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "the directory of %s is too long", path);
    char *tmp = malloc(strlen(path) + sizeof ".tmp.XXXXXX");
    if (!tmp)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    sprintf(tmp, "%s.tmp.XXXXXX", path);
    /* mkostemp: O_CREAT | O_EXCL, so an existing name (a planted symlink
     * included) is never opened, and a name nobody can predict. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return charrnn_fail(err, errlen, CHARRNN_EIO,
                            "cannot create a temporary file next to %s: %s", path, strerror(e));
    }
    (void)flock(fd, LOCK_EX); /* marks it live for charrnn_remove_stale_tmp */
    FILE *f = fdopen(fd, "w");
    int bad = !f, e = errno;
    if (f) {
        errno = 0;
        bad = produce(f, ctx) != 0 || fflush(f) != 0 || ferror(f);
        e = errno ? errno : EIO;
    }
    /* fchmod: mkstemp creates 0600; what the project writes is meant to be
     * shared read-only (a model store, a browser). */
    if (!bad && (fchmod(fd, 0644) || fsync(fd)))
        bad = 1, e = errno;
    if ((f ? fclose(f) : close(fd)) && !bad)
        bad = 1, e = errno;
    if (!bad && rename(tmp, path))
        bad = 1, e = errno;
    if (bad) {
        unlink(tmp);
        free(tmp);
        return charrnn_fail(err, errlen, CHARRNN_EIO, "cannot write %s: %s", path, strerror(e));
    }
    free(tmp);
    /* fsync the directory so the rename itself survives a crash. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd)) {
        e = errno;
        if (dfd >= 0)
            close(dfd);
        return charrnn_fail(err, errlen, CHARRNN_EIO,
                            "wrote %s but cannot make it durable (fsync of %s): %s", path, dir,
                            strerror(e));
    }
    close(dfd);
    return CHARRNN_OK;
}

const char *charrnn_path_split(const char *path, char *dir, size_t dirlen)
{
    const char *slash = strrchr(path, '/');
    const char *d = slash ? (slash == path ? "/" : path) : ".";
    size_t len = slash && slash != path ? (size_t)(slash - path) : strlen(d);
    if (len >= dirlen)
        return NULL;
    memcpy(dir, d, len);
    dir[len] = '\0';
    return slash ? slash + 1 : path;
}

/* The suffix charrnn_file_write_atomic appends after ".tmp.": mkstemp's six
 * letters and digits. */
static int tmp_suffix(const char *x)
{
    size_t n = strlen(x), alnum = 0;
    for (size_t i = 0; i < n; i++)
        alnum += isalnum((unsigned char)x[i]) != 0;
    return n == 6 && alnum == 6;
}

int charrnn_remove_stale_tmp(const char *dir, int (*ours)(const char *name, const void *ctx),
                             const void *ctx, double min_age_sec)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return 0;
    }
    int removed = 0;
    const time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        /* NAME.tmp.SUFFIX: the last ".tmp." splits the name from the suffix. */
        const char *tmp = NULL;
        for (const char *p = strstr(e->d_name, ".tmp."); p; p = strstr(p + 1, ".tmp."))
            tmp = p;
        if (!tmp || tmp == e->d_name || !tmp_suffix(tmp + 5))
            continue;
        char name[sizeof e->d_name];
        memcpy(name, e->d_name, (size_t)(tmp - e->d_name));
        name[tmp - e->d_name] = '\0';
        if (!ours(name, ctx))
            continue;
        int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st;
        /* A live writer holds an exclusive flock on its temporary
         * (charrnn_file_write_atomic); the age bound also covers the instant between its close
         * and rename, and writers that predate the lock. */
        if (!fstat(fd, &st) && S_ISREG(st.st_mode) && difftime(now, st.st_mtime) >= min_age_sec &&
            !flock(fd, LOCK_EX | LOCK_NB))
            removed += unlinkat(dfd, e->d_name, 0) == 0;
        close(fd);
    }
    closedir(d);
    return removed;
}
