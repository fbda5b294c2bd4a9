/* See fileio.h. */
#include "fileio.h"

#include "charrnn/status.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
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
