/* See fileio.h. */
#include "fileio.h"

#include "charrnn/status.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int charrnn_file_open(const char *path, int *fd, size_t *size, char *err, size_t errlen)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return charrnn_fail(err, errlen, errno == ENOENT ? CHARRNN_ENOTFOUND : CHARRNN_EIO,
                            "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return charrnn_fail(err, errlen, CHARRNN_EIO, "%s is not a regular file", path);
    }
    *size = (size_t)st.st_size;
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

/* The suffix a writer of this library appends after ".tmp.": mkstemp's six
 * letters and digits (safetensors) or a process id (the loss plot). */
static int tmp_suffix(const char *x)
{
    size_t n = strlen(x), alnum = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        alnum += isalnum((unsigned char)x[i]) != 0;
        digits += isdigit((unsigned char)x[i]) != 0;
    }
    return n > 0 && ((n == 6 && alnum == 6) || digits == n);
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
        /* A live writer holds an exclusive flock on its temporary (safetensors.c,
         * lossplot.c); the age bound also covers the instant between its close
         * and rename, and writers that predate the lock. */
        if (!fstat(fd, &st) && S_ISREG(st.st_mode) && difftime(now, st.st_mtime) >= min_age_sec &&
            !flock(fd, LOCK_EX | LOCK_NB))
            removed += unlinkat(dfd, e->d_name, 0) == 0;
        close(fd);
    }
    closedir(d);
    return removed;
}
