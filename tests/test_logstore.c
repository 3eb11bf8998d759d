/* test_logstore.c - the daemon's copy of node output (jgsched/logstore.h). */
#include <criterion/criterion.h>

#include "jgsched/logstore.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char logs_dir[128];
static jg_logstore_t *ls;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void setup(void)
{
    strcpy(dir, "/tmp/jg-logstore-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(logs_dir, sizeof logs_dir, "%s/logs", dir);
    jg_error_t err = {{0}};
    ls = jg_logstore_open(logs_dir, &err);
    cr_assert_not_null(ls, "%s", err.text);
}

static void teardown(void)
{
    jg_logstore_close(ls);
    ls = NULL;
    if (dir[0])
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(logstore, .init = setup, .fini = teardown, .timeout = 30);

static void append(int64_t gid, const char *job, int rank, int attempt, const char *text)
{
    jg_error_t err = {{0}};
    cr_assert_eq(jg_logstore_append(ls, gid, job, rank, attempt, text, strlen(text), &err), 0,
                 "%s", err.text);
}

/* The whole stored log of a node (static buffer). */
static const char *read_all(int64_t gid, const char *job, int rank)
{
    static char buf[8192];
    jg_error_t err = {{0}};
    int fd = jg_logstore_open_read(ls, gid, job, rank, &err);
    cr_assert_geq(fd, 0, "%s", err.text);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    cr_assert_geq(n, 0);
    buf[n] = '\0';
    return buf;
}

Test(logstore, the_directory_is_the_daemons_alone)
{
    struct stat st;
    cr_assert_eq(stat(logs_dir, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700);
    /* Opened again with looser modes: tightened. */
    jg_logstore_close(ls);
    cr_assert_eq(chmod(logs_dir, 0777), 0);
    jg_error_t err = {{0}};
    ls = jg_logstore_open(logs_dir, &err);
    cr_assert_not_null(ls, "%s", err.text);
    cr_assert_eq(stat(logs_dir, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700);
}

Test(logstore, pieces_are_appended_in_order_and_attempts_indexed)
{
    append(7, "train", 0, 1, "a1-");
    append(7, "train", 0, 1, "part\n");
    append(7, "train", 0, 2, "a2\n");
    append(7, "train", 1, 1, "other node\n");
    cr_assert_str_eq(read_all(7, "train", 0), "a1-part\na2\n");
    cr_assert_str_eq(read_all(7, "train", 1), "other node\n");
    jg_log_attempt_t at[4];
    cr_assert_eq(jg_logstore_attempts(ls, 7, "train", 0, at, 4), 2);
    cr_expect(at[0].attempt == 1 && at[0].offset == 0);
    cr_expect(at[1].attempt == 2 && at[1].offset == 8, "attempt 2 at %lld", (long long)at[1].offset);
    cr_expect_eq(jg_logstore_size(ls, 7, "train", 0), 11);
    cr_expect_eq(jg_logstore_attempt_size(ls, 7, "train", 0, 1), 8);
    cr_expect_eq(jg_logstore_attempt_size(ls, 7, "train", 0, 2), 3);
    cr_expect_eq(jg_logstore_attempt_size(ls, 7, "train", 0, 3), 0);
}

Test(logstore, what_was_stored_survives_a_reopen)
{
    append(8, "a", 0, 1, "one\n");
    append(8, "a", 0, 2, "two\n");
    jg_logstore_close(ls);
    jg_error_t err = {{0}};
    ls = jg_logstore_open(logs_dir, &err);
    cr_assert_not_null(ls, "%s", err.text);
    cr_expect_eq(jg_logstore_size(ls, 8, "a", 0), 8);
    /* The same attempt again does not start a new one in the index. */
    append(8, "a", 0, 2, "more\n");
    jg_log_attempt_t at[4];
    cr_assert_eq(jg_logstore_attempts(ls, 8, "a", 0, at, 4), 2);
    cr_assert_str_eq(read_all(8, "a", 0), "one\ntwo\nmore\n");
}

Test(logstore, more_nodes_than_cached_descriptors_stay_apart)
{
    char job[16], text[32];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 40; i++) {
            snprintf(job, sizeof job, "j%d", i);
            snprintf(text, sizeof text, "%d.%d\n", i, round);
            append(9, job, 0, 1, text);
        }
    }
    for (int i = 0; i < 40; i++) {
        snprintf(job, sizeof job, "j%d", i);
        snprintf(text, sizeof text, "%d.0\n%d.1\n", i, i);
        cr_assert_str_eq(read_all(9, job, 0), text);
    }
}

Test(logstore, no_log_reads_as_enoent_and_bad_names_are_refused)
{
    jg_error_t err = {{0}};
    cr_assert_eq(jg_logstore_open_read(ls, 5, "a", 0, &err), -1);
    cr_assert_eq(errno, ENOENT);
    cr_assert_eq(jg_logstore_open_read(ls, 5, "../a", 0, &err), -1);
    cr_assert_eq(jg_logstore_append(ls, 5, "../x", 0, 1, "x", 1, &err), -1);
    cr_assert_eq(jg_logstore_append(ls, 5, ".hidden", 0, 1, "x", 1, &err), -1);
    cr_assert_eq(jg_logstore_append(ls, 5, "a", 0, 0, "x", 1, &err), -1, "attempt 0 accepted");
    jg_log_attempt_t at[2];
    cr_assert_eq(jg_logstore_attempts(ls, 5, "a", 0, at, 2), 0);
    cr_assert_eq(jg_logstore_size(ls, 5, "a", 0), 0);
}

Test(logstore, remove_group_deletes_its_logs_only)
{
    append(10, "a", 0, 1, "x\n");
    append(11, "a", 0, 1, "y\n");
    jg_error_t err = {{0}};
    cr_assert_eq(jg_logstore_remove_group(ls, 10, &err), 0, "%s", err.text);
    cr_assert_eq(jg_logstore_open_read(ls, 10, "a", 0, &err), -1);
    cr_assert_str_eq(read_all(11, "a", 0), "y\n");
    cr_assert_eq(jg_logstore_remove_group(ls, 12, &err), 0, "no group is no error");
    /* Appending again after a removal starts afresh. */
    append(10, "a", 0, 1, "z\n");
    cr_assert_str_eq(read_all(10, "a", 0), "z\n");
}
