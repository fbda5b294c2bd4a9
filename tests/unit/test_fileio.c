/* The whole-file reader and the atomic writer (fileio.h): special files are
 * refused without blocking, symlinks only when asked, a failed write leaves
 * the old file and no temporary, and the stale-temporary tidying knows the
 * writer's one naming scheme. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmpdir(void)
{
    char *d = strdup("/tmp/charrnn-fileio-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void rm_rf(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A FIFO without a writer would block a plain open() forever (the test's
 * timeout then fails it); a directory and a device are refused too. */
START_TEST(read_refuses_special_files)
{
    char *dir = tmpdir(), path[256], err[CHARRNN_ERR_MAX];
    uint8_t *buf = (uint8_t *)"x";
    size_t len = 7;
    snprintf(path, sizeof path, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    const char *special[] = {path, dir, "/dev/null"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(charrnn_file_read(special[i], 0, &buf, &len, NULL, err, sizeof err),
                         CHARRNN_EIO);
        ck_assert_msg(strstr(err, "is not a regular file"), "%s", err);
        ck_assert_ptr_null(buf);
        ck_assert_uint_eq(len, 0);
    }
    struct stat st;
    int fd = 5;
    ck_assert_int_eq(charrnn_file_open(path, 0, &fd, &st, err, sizeof err), CHARRNN_EIO);
    ck_assert_int_eq(fd, -1);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(read_whole_file_and_symlinks)
{
    char *dir = tmpdir(), path[256], link[256], err[CHARRNN_ERR_MAX];
    snprintf(path, sizeof path, "%s/a.txt", dir);
    snprintf(link, sizeof link, "%s/b.txt", dir);
    put(path, "hello, file");
    ck_assert_int_eq(symlink(path, link), 0);
    uint8_t *buf;
    size_t len;
    struct stat st;
    ck_assert_int_eq(charrnn_file_read(link, 0, &buf, &len, &st, err, sizeof err), CHARRNN_OK);
    ck_assert_uint_eq(len, 11);
    ck_assert_int_eq(memcmp(buf, "hello, file", 11), 0);
    ck_assert_int_eq(st.st_size, 11);
    free(buf);
    ck_assert_int_eq(
        charrnn_file_read(link, CHARRNN_FILE_NOFOLLOW, &buf, &len, NULL, err, sizeof err),
        CHARRNN_EIO);
    ck_assert_ptr_null(buf);
    snprintf(link, sizeof link, "%s/none", dir);
    ck_assert_int_eq(charrnn_file_read(link, 0, &buf, &len, NULL, err, sizeof err),
                     CHARRNN_ENOTFOUND);
    ck_assert_msg(strstr(err, "cannot open ") && strstr(err, "/none"), "%s", err);
    rm_rf(dir);
    free(dir);
}
END_TEST

static int produce_text(FILE *f, void *ctx)
{
    return fputs(ctx, f) < 0;
}

static int produce_then_fail(FILE *f, void *ctx)
{
    fputs("half a file", f);
    return 1;
}

START_TEST(atomic_write)
{
    char *dir = tmpdir(), path[256], err[CHARRNN_ERR_MAX];
    snprintf(path, sizeof path, "%s/out.svg", dir);
    ck_assert_int_eq(charrnn_file_write_atomic(path, produce_text, "first", err, sizeof err),
                     CHARRNN_OK);
    ck_assert_int_eq(charrnn_file_write_atomic(path, produce_text, "second", err, sizeof err),
                     CHARRNN_OK);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    ck_assert_int_eq(charrnn_file_write_atomic(path, produce_then_fail, NULL, err, sizeof err),
                     CHARRNN_EIO);
    ck_assert_msg(strstr(err, "cannot write ") && strstr(err, "out.svg"), "%s", err);
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(charrnn_file_read(path, 0, &buf, &len, NULL, err, sizeof err), CHARRNN_OK);
    ck_assert_uint_eq(len, 6);
    ck_assert_int_eq(memcmp(buf, "second", 6), 0);
    free(buf);
    ck_assert_int_eq(entries(dir), 1); /* no temporary left behind */
    snprintf(path, sizeof path, "%s/missing/out.svg", dir);
    ck_assert_int_eq(charrnn_file_write_atomic(path, produce_text, "x", err, sizeof err),
                     CHARRNN_EIO);
    rm_rf(dir);
    free(dir);
}
END_TEST

static int any_name(const char *name, const void *ctx)
{
    return 1;
}

START_TEST(stale_tmp_one_scheme)
{
    char *dir = tmpdir(), path[256];
    const char *stale[] = {"a.safetensors.tmp.Ab12Cd", "loss.svg.tmp.Zz99Yy"};
    const char *keep[] = {"loss.svg.tmp.4242", "a.tmp.Ab12C", "a.tmp.Ab-2Cd", ".tmp.Ab12Cd"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, stale[i]);
        put(path, "x");
    }
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, keep[i]);
        put(path, "x");
    }
    ck_assert_int_eq(charrnn_remove_stale_tmp(dir, any_name, NULL, 0.0), 2);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, keep[i]);
        ck_assert_msg(access(path, F_OK) == 0, "%s was removed", keep[i]);
    }
    rm_rf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fileio");
    ADD_CASE(s, "read", read_refuses_special_files, read_whole_file_and_symlinks);
    ADD_CASE(s, "write", atomic_write, stale_tmp_one_scheme);
    return run_suite(s);
}
