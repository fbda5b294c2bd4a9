/* See fileio.h. */
#include "fileio.h"

#include "charrnn/status.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
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

int charrnn_remove_stale_tmp(const char *dir, int (*ours)(const char *name, void *ctx),
                             void *ctx, double min_age_sec)
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
        /* The last ".tmp." splits NAME from the suffix mkstemp or the pid made. */
        const char *tmp = NULL;
        for (const char *p = strstr(e->d_name, ".tmp."); p; p = strstr(p + 1, ".tmp."))
            tmp = p;
        if (!tmp || tmp == e->d_name || !tmp[5] || strchr(tmp + 5, '/'))
            continue;
        size_t n = (size_t)(tmp - e->d_name);
        char name[256];
        if (n >= sizeof name)
            continue;
        memcpy(name, e->d_name, n);
        name[n] = '\0';
        struct stat st;
        if (!ours(name, ctx) || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
            !S_ISREG(st.st_mode) || difftime(now, st.st_mtime) < min_age_sec)
            continue;
        removed += unlinkat(dfd, e->d_name, 0) == 0;
    }
    closedir(d);
    return removed;
}
