/* test_store.c - the SQLite store: schema, round trips of every setter, the
 * event history, filters, transactions, refusing files that are not ours, and
 * several processes writing one file at once.  Every test works in its own
 * temporary directory, removed in fini. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jgsched/store.h"

static char dir[64];
static char db_path[128];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    strcpy(dir, "/tmp/jg-store-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/jgsched.db", dir);
}

static void teardown(void)
{
    if (dir[0])
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store, .init = setup, .fini = teardown);

/* A two-job group built by hand: trainer x2, server x1. */
static jg_job_spec_t test_jobs[2] = {
    {.name = "trainer", .num_nodes = 2},
    {.name = "server", .num_nodes = 1},
};
static jg_group_spec_t test_spec = {.name = "rl", .jobs = test_jobs, .n_jobs = 2};

static jg_store_t *open_ok(void)
{
    jg_error_t err = {{0}};
    jg_store_t *s = jg_store_open(db_path, &err);
    cr_assert_not_null(s, "open failed: %s", err.text);
    return s;
}

static int64_t add(jg_store_t *s, const char *user, int64_t now)
{
    jg_error_t err = {{0}};
    int64_t id = 0;
    cr_assert_eq(jg_store_add_group(s, &test_spec, "{\"name\":\"rl\"}", 1000, 100, user, now,
                                    &id, &err), 0, "%s", err.text);
    cr_assert_gt(id, 0);
    return id;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
}

static size_t count_events(jg_store_t *s, int64_t id)
{
    jg_event_row_t *ev;
    size_t n;
    cr_assert_eq(jg_store_list_events(s, id, &ev, &n, NULL), 0);
    jg_event_rows_free(ev, n);
    return n;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* ---- schema ---- */

Test(store, open_creates_schema_in_wal_with_version_and_app_id)
{
    jg_store_close(open_ok());
    sqlite3 *db = raw_open(db_path);
    cr_expect_eq(raw_int(db, "PRAGMA user_version"), 5);
    cr_expect_neq(raw_int(db, "PRAGMA application_id"), 0);
    cr_expect_eq(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
                             "name IN ('groups', 'jobs', 'nodes', 'events')"), 4);
    cr_expect_eq(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
                             "name IN ('groups_state', 'events_group')"), 2);
    /* AUTOINCREMENT: ids of groups are never reused */
    cr_expect_eq(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'"),
                 1);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A store file that exists but is empty lost its contents (a full disk, a
 * copy gone wrong): taking it for a new store would restart group ids at 1. */
Test(store, an_empty_existing_file_is_refused_naming_it_and_left_alone)
{
    int fd = open(db_path, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    jg_error_t err = {{0}};
    cr_assert_null(jg_store_open(db_path, &err), "an empty file was taken as a new store");
    cr_expect(strncmp(err.text, db_path, strlen(db_path)) == 0, "names the file: %s", err.text);
    cr_expect(strstr(err.text, "empty") != NULL, "%s", err.text);
    cr_assert_null(jg_store_open_exclusive(db_path, &err));
    struct stat st;
    cr_assert_eq(stat(db_path, &st), 0);
    cr_expect_eq(st.st_size, 0, "the file was written");
}

Test(store, a_missing_file_is_a_new_store_and_no_temporary_file_is_left)
{
    jg_store_t *s = open_ok();
    cr_expect_eq(add(s, "alice", 1), 1);
    jg_store_close(s);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        cr_expect(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
                      (strncmp(e->d_name, "jgsched.db", 10) == 0 && !strstr(e->d_name, ".new")),
                  "left behind: %s", e->d_name);
    closedir(d);
}

/* WAL keeps its index in a -shm file every connection mmaps; another program
 * truncating it made the next access die of SIGBUS.  The daemon's store keeps
 * that index in memory, so the file does not matter. */
Test(store, the_daemons_store_survives_a_truncated_shm_file)
{
    jg_error_t err = {{0}};
    jg_store_t *s = jg_store_open_exclusive(db_path, &err);
    cr_assert_not_null(s, "%s", err.text);
    int64_t first = add(s, "alice", 1);
    char shm[160];
    snprintf(shm, sizeof shm, "%s-shm", db_path);
    int fd = open(shm, O_CREAT | O_WRONLY | O_TRUNC, 0600);     /* truncated, or made */
    cr_assert_geq(fd, 0);
    close(fd);
    int64_t second = add(s, "alice", 2);
    cr_expect_gt(second, first);
    jg_group_row_t g;
    cr_expect_eq(jg_store_get_group(s, first, &g, &err), 0, "%s", err.text);
    jg_group_row_clear(&g);
    jg_store_close(s);
    unlink(shm);
    s = open_ok();
    cr_expect_eq(jg_store_get_group(s, second, &g, &err), 0, "%s", err.text);
    jg_group_row_clear(&g);
    jg_store_close(s);
}

Test(store, the_daemons_store_is_locked_against_a_second_writer)
{
    jg_error_t err = {{0}};
    jg_store_t *s = jg_store_open_exclusive(db_path, &err);
    cr_assert_not_null(s, "%s", err.text);
    add(s, "alice", 1);
    sqlite3 *db = raw_open(db_path);
    sqlite3_busy_timeout(db, 50);
    cr_expect_neq(sqlite3_exec(db, "INSERT INTO volumes VALUES ('v', '/v', 0, 'x', 0)", NULL,
                               NULL, NULL), SQLITE_OK, "another process wrote the store");
    sqlite3_close(db);
    jg_store_close(s);
}

/* A full disk, simulated by capping the file: the setter fails, names the
 * store, and leaves neither the row change nor its event. */
Test(store, a_full_store_fails_the_setter_and_leaves_no_trace)
{
    jg_store_t *s = open_ok();
    int64_t id = add(s, "alice", 1);
    size_t events = count_events(s, id);
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_limit_pages(s, 1, &err), 0, "%s", err.text);
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(jg_store_begin(s, &err), 0, "%s", err.text);
    int rc = 0;
    for (int i = 0; i < 50 && rc == 0; i++)
        rc = jg_store_set_group_state(s, id, JG_CANCELLING, big, 2, &err);
    cr_assert_lt(rc, 0, "the capped store took every write");
    jg_store_rollback(s);
    cr_expect(strstr(err.text, db_path) != NULL, "names the store: %s", err.text);
    cr_expect(strstr(err.text, "full") != NULL, "%s", err.text);
    jg_group_row_t g;
    cr_assert_eq(jg_store_get_group(s, id, &g, &err), 0, "%s", err.text);
    cr_expect_eq(g.state, JG_PENDING);
    jg_group_row_clear(&g);
    cr_expect_eq(count_events(s, id), events);
    jg_store_close(s);
}

Test(store, a_pending_restart_round_trips_and_a_new_attempt_clears_it)
{
    jg_store_t *s = open_ok();
    int64_t id = add(s, "alice", 1);
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_set_job_restart(s, id, 1, JG_COUNT_RECOVERY, 12345, &err), 0, "%s",
                 err.text);
    jg_job_row_t *jobs;
    size_t n;
    cr_assert_eq(jg_store_list_jobs(s, id, &jobs, &n, &err), 0, "%s", err.text);
    cr_expect_eq(jobs[0].restart_count, -1);
    cr_expect_eq(jobs[1].restart_count, JG_COUNT_RECOVERY);
    cr_expect_eq(jobs[1].restart_due_us, 12345);
    jg_job_rows_free(jobs, n);
    cr_assert_eq(jg_store_job_new_attempt(s, id, 1, JG_COUNT_NONE, 2, &err), 0, "%s", err.text);
    cr_assert_eq(jg_store_list_jobs(s, id, &jobs, &n, &err), 0, "%s", err.text);
    cr_expect_eq(jobs[1].restart_count, -1);
    cr_expect_eq(jobs[1].free_restarts, 1);
    cr_expect_eq(jobs[1].attempt, 2);
    jg_job_rows_free(jobs, n);
    cr_expect_lt(jg_store_set_job_restart(s, id, 7, 0, 0, &err), 0);
    jg_store_close(s);
}

Test(store, reopen_keeps_every_row)
{
    jg_store_t *s = open_ok();
    int64_t id = add(s, "alice", 42);
    cr_assert_eq(jg_store_set_node_handle(s, id, 0, 1, "pid:77", "10.0.0.2", NULL), 0);
    jg_store_close(s);

    s = open_ok();
    jg_group_row_t g;
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_get_group(s, id, &g, &err), 0, "%s", err.text);
    cr_expect_str_eq(g.name, "rl");
    cr_expect_str_eq(g.user, "alice");
    cr_expect_eq(g.uid, 1000);
    cr_expect_eq(g.gid, 100);
    cr_expect_eq(g.state, JG_PENDING);
    cr_expect_str_eq(g.spec_json, "{\"name\":\"rl\"}");
    cr_expect_str_eq(g.infra, "");
    cr_expect_eq(g.submitted_us, 42);
    cr_expect_eq(g.started_us, 0);
    cr_expect_eq(g.ended_us, 0);
    jg_group_row_clear(&g);

    jg_node_row_t *nodes;
    size_t n;
    cr_assert_eq(jg_store_list_nodes(s, id, &nodes, &n, NULL), 0);
    cr_assert_eq(n, 3);
    cr_expect_str_eq(nodes[1].handle, "pid:77");
    cr_expect_str_eq(nodes[1].address, "10.0.0.2");
    jg_node_rows_free(nodes, n);
    cr_expect_eq(count_events(s, id), 1);
    jg_store_close(s);
}

/* ---- add_group ---- */

Test(store, add_group_inserts_jobs_nodes_hostnames_and_submitted_event)
{
    jg_store_t *s = open_ok();
    int64_t id = add(s, "alice", 5);

    jg_job_row_t *jobs;
    size_t nj;
    cr_assert_eq(jg_store_list_jobs(s, id, &jobs, &nj, NULL), 0);
    cr_assert_eq(nj, 2);
    cr_expect_str_eq(jobs[0].name, "trainer");
    cr_expect_eq(jobs[0].index, 0);
    cr_expect_eq(jobs[0].num_nodes, 2);
    cr_expect_str_eq(jobs[1].name, "server");
    cr_expect_eq(jobs[1].index, 1);
    for (size_t i = 0; i < nj; i++) {
        cr_expect_eq(jobs[i].group_id, id);
        cr_expect_eq(jobs[i].state, JG_PENDING);
        cr_expect_eq(jobs[i].attempt, 1);
        cr_expect_eq(jobs[i].restarts, 0);
        cr_expect_eq(jobs[i].recoveries, 0);
        cr_expect_eq(jobs[i].exit_code, -1);
    }
    jg_job_rows_free(jobs, nj);

    jg_node_row_t *nodes;
    size_t nn;
    cr_assert_eq(jg_store_list_nodes(s, id, &nodes, &nn, NULL), 0);
    cr_assert_eq(nn, 3);
    const char *hosts[] = {"trainer-0.rl", "trainer-1.rl", "server-0.rl"};
    const int job_idx[] = {0, 0, 1}, ranks[] = {0, 1, 0};
    for (size_t i = 0; i < nn; i++) {
        cr_expect_str_eq(nodes[i].hostname, hosts[i]);
        cr_expect_eq(nodes[i].job_index, job_idx[i]);
        cr_expect_eq(nodes[i].rank, ranks[i]);
        cr_expect_eq(nodes[i].state, JG_PENDING);
        cr_expect_eq(nodes[i].exit_code, -1);
        cr_expect_str_eq(nodes[i].address, "");
        cr_expect_str_eq(nodes[i].handle, "");
    }
    jg_node_rows_free(nodes, nn);

    jg_event_row_t *ev;
    size_t ne;
    cr_assert_eq(jg_store_list_events(s, id, &ev, &ne, NULL), 0);
    cr_assert_eq(ne, 1);
    cr_expect_str_eq(ev[0].subject, "group");
    cr_expect_str_eq(ev[0].what, "PENDING");
    cr_expect_str_eq(ev[0].reason, "submitted");
    cr_expect_eq(ev[0].ts_us, 5);
    jg_event_rows_free(ev, ne);
    jg_store_close(s);
}

Test(store, group_ids_are_distinct_and_increasing)
{
    jg_store_t *s = open_ok();
    int64_t a = add(s, "alice", 1), b = add(s, "alice", 2);
    cr_expect_gt(b, a);
    jg_store_close(s);
}

/* ---- setters ---- */

Test(store, group_state_sets_started_once_and_ended_on_terminal)
{
    jg_store_t *s = open_ok();
    int64_t id = add(s, "alice", 1);
    jg_error_t err = {{0}};
    jg_group_row_t g;

    cr_assert_eq(jg_store_set_group_state(s, id, JG_STARTING, "launching", 10, &err), 0, "%s",
                 err.text);
    cr_assert_eq(jg_store_set_group_state(s, id, JG_RECOVERING, "node lost", 20, &err), 0);
    cr_assert_eq(jg_store_set_group_state(s, id, JG_STARTING, "relaunch", 30, &err), 0);
    cr_assert_eq(jg_store_get_group(s, id, &g, &err), 0);
    cr_expect_eq(g.state, JG_STARTING);
    cr_expect_str_eq(g.reason, "relaunch");
    cr_expect_eq(g.started_us, 10, "started_us is the first STARTING, got %lld",
                 (long long)g.started_us);
    cr_expect_eq(g.ended_us, 0);
    jg_group_row_clear(&g);

    cr_assert_eq(jg_store_set_group_state(s, id, JG_FAILED, "trainer failed", 40, &err), 0);
    cr_assert_eq(jg_store_get_group(s, id, &g, &err), 0);
    cr_expect_eq(g.state, JG_FAILED);
    cr_expect_str_eq(g.reason, "trainer failed");
    cr_expect_eq(g.ended_us, 40);
    jg_group_row_clear(&g);

    cr_assert_eq(jg_store_set_group_infra(s, id, "kubernetes/ctx", &err), 0, "%s", err.text);
    cr_assert_eq(jg_store_get_group(s, id, &g, &err), 0);
    cr_expect_str_eq(g.infra, "kubernetes/ctx");
    jg_group_row_clear(&g);
    jg_store_close(s);
}

Test(store, job_state_attempts_and_exit_round_trip)
{
    jg_store_t *s = open_ok();
    int64_t id = add(s, "alice", 1);
    jg_error_t err = {{0}};

    cr_assert_eq(jg_store_set_job_state(s, id, 1, JG_STARTING, "launched", 10, &err), 0, "%s",
                 err.text);
    cr_assert_eq(jg_store_set_job_state(s, id, 1, JG_RUNNING, "barrier passed", 20, &err), 0);
    cr_assert_eq(jg_store_set_job_exit(s, id, 1, 29, &err), 0, "%s", err.text);
    cr_assert_eq(jg_store_set_job_state(s, id, 1, JG_FAILED, "exit 29", 30, &err), 0);

    jg_job_row_t *jobs;
    size_t n;
    cr_assert_eq(jg_store_list_jobs(s, id, &jobs, &n, NULL), 0);
    cr_expect_eq(jobs[1].state, JG_FAILED);
    cr_expect_str_eq(jobs[1].reason, "exit 29");
    cr_expect_eq(jobs[1].exit_code, 29);
    cr_expect_eq(jobs[1].started_us, 10);
    cr_expect_eq(jobs[1].ended_us, 30);
    cr_expect_eq(jobs[0].state, JG_PENDING, "the sibling is untouched");
    jg_job_rows_free(jobs, n);

    cr_assert_eq(jg_store_job_new_attempt(s, id, 1, JG_COUNT_RESTART, 40, &err), 0, "%s", err.text);
    cr_assert_eq(jg_store_job_new_attempt(s, id, 1, JG_COUNT_RECOVERY, 50, &err), 0);
    cr_assert_eq(jg_store_job_new_attempt(s, id, 1, JG_COUNT_RESTART, 60, &err), 0);
    cr_assert_eq(jg_store_set_job_state(s, id, 1, JG_RECOVERING, "restart", 70, &err), 0);
    cr_assert_eq(jg_store_list_jobs(s, id, &jobs, &n, NULL), 0);
    cr_expect_eq(jobs[1].attempt, 4);
    cr_expect_eq(jobs[1].restarts, 2);
    cr_expect_eq(jobs[1].recoveries, 1);
    cr_expect_eq(jobs[1].ended_us, 0, "leaving a terminal state clears ended_us");
    cr_expect_eq(jobs[1].started_us, 10);
    jg_job_rows_free(jobs, n);

    jg_event_row_t *ev;
    cr_assert_eq(jg_store_list_events(s, id, &ev, &n, NULL), 0);
    cr_assert_eq(n, 8);
    cr_expect_str_eq(ev[4].subject, "job server");
    cr_expect_str_eq(ev[4].what, "attempt");
    cr_expect_str_eq(ev[4].reason, "attempt 2");
    cr_expect_str_eq(ev[5].what, "RECOVERING");
    cr_expect_str_eq(ev[5].reason, "attempt 3");
    cr_expect_str_eq(ev[6].what, "attempt");
    cr_expect_str_eq(ev[6].reason, "attempt 4");
    cr_expect_eq(ev[6].ts_us, 60);
    jg_event_rows_free(ev, n);
    jg_store_close(s);
}

Test(store, node_state_and_handle_round_trip)
{
    jg_store_t *s = open_ok();
    int64_t id = add(s, "alice", 1);
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_set_node_state(s, id, 0, 1, JG_READY, 2, -1, "setup done", 10, &err),
                 0, "%s", err.text);
    cr_assert_eq(jg_store_set_node_state(s, id, 0, 1, JG_FAILED, 2, 137, "killed", 20, &err), 0);
    cr_assert_eq(jg_store_set_node_handle(s, id, 0, 1, "ns:42", "10.1.0.3", &err), 0);

    jg_node_row_t *nodes;
    size_t n;
    cr_assert_eq(jg_store_list_nodes(s, id, &nodes, &n, NULL), 0);
    cr_expect_eq(nodes[1].state, JG_FAILED);
    cr_expect_eq(nodes[1].attempt, 2);
    cr_expect_eq(nodes[1].exit_code, 137);
    cr_expect_str_eq(nodes[1].handle, "ns:42");
    cr_expect_str_eq(nodes[1].address, "10.1.0.3");
    cr_expect_eq(nodes[0].state, JG_PENDING);
    jg_node_rows_free(nodes, n);

    jg_event_row_t *ev;
    cr_assert_eq(jg_store_list_events(s, id, &ev, &n, NULL), 0);
    cr_assert_eq(n, 3);
    cr_expect_str_eq(ev[1].subject, "node trainer-1");
    cr_expect_str_eq(ev[1].what, "READY");
    cr_expect_str_eq(ev[1].reason, "setup done");
    cr_expect_str_eq(ev[2].what, "FAILED");
    cr_expect_str_eq(ev[2].reason, "killed");
    jg_event_rows_free(ev, n);
    jg_store_close(s);
}

Test(store, events_are_recorded_in_order_with_reasons)
{
    jg_store_t *s = open_ok();
    int64_t id = add(s, "alice", 1);
    int64_t other = add(s, "bob", 1);
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_set_group_state(s, id, JG_STARTING, "admitted", 2, &err), 0);
    cr_assert_eq(jg_store_set_job_state(s, id, 0, JG_STARTING, "launched", 3, &err), 0);
    cr_assert_eq(jg_store_set_group_state(s, other, JG_CANCELLED, "by bob", 3, &err), 0);
    cr_assert_eq(jg_store_set_node_state(s, id, 1, 0, JG_STARTING, 1, -1, "pod created", 4,
                                         &err), 0);
    cr_assert_eq(jg_store_add_event(s, id, "policy", "restart_job", "exit 29 is recoverable", 5,
                                    &err), 0, "%s", err.text);
    cr_assert_eq(jg_store_set_group_state(s, id, JG_CANCELLED, NULL, 6, &err), 0);

    struct { const char *subject, *what, *reason; int64_t ts; } want[] = {
        {"group", "PENDING", "submitted", 1},
        {"group", "STARTING", "admitted", 2},
        {"job trainer", "STARTING", "launched", 3},
        {"node server-0", "STARTING", "pod created", 4},
        {"policy", "restart_job", "exit 29 is recoverable", 5},
        {"group", "CANCELLED", "", 6},
    };
    jg_event_row_t *ev;
    size_t n;
    cr_assert_eq(jg_store_list_events(s, id, &ev, &n, NULL), 0);
    cr_assert_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(ev[i].group_id, id);
        cr_expect_str_eq(ev[i].subject, want[i].subject, "event %zu", i);
        cr_expect_str_eq(ev[i].what, want[i].what, "event %zu", i);
        cr_expect_str_eq(ev[i].reason, want[i].reason, "event %zu", i);
        cr_expect_eq(ev[i].ts_us, want[i].ts, "event %zu", i);
        if (i > 0)
            cr_expect_gt(ev[i].id, ev[i - 1].id);
    }
    jg_event_rows_free(ev, n);
    cr_expect_eq(count_events(s, other), 2);
    jg_store_close(s);
}

Test(store, setters_on_missing_rows_fail_and_leave_no_event)
{
    jg_store_t *s = open_ok();
    int64_t id = add(s, "alice", 1);
    jg_error_t err = {{0}};
    cr_expect_eq(jg_store_set_group_state(s, 999, JG_RUNNING, "x", 1, &err), -1);
    cr_expect_str_eq(err.text, "no group 999");
    cr_expect_eq(jg_store_set_group_infra(s, 999, "local", &err), -1);
    cr_expect_eq(jg_store_set_job_state(s, id, 7, JG_RUNNING, "x", 1, &err), -1);
    cr_expect(strstr(err.text, "no job 7") != NULL, "%s", err.text);
    cr_expect_eq(jg_store_job_new_attempt(s, id, 7, JG_COUNT_RECOVERY, 1, &err), -1);
    cr_expect_eq(jg_store_set_job_exit(s, id, 7, 1, &err), -1);
    cr_expect_eq(jg_store_set_node_state(s, id, 0, 5, JG_RUNNING, 1, -1, "x", 1, &err), -1);
    cr_expect(strstr(err.text, "no node 5") != NULL, "%s", err.text);
    cr_expect_eq(jg_store_set_node_handle(s, id, 0, 5, "h", "a", &err), -1);
    cr_expect_eq(jg_store_add_event(s, 999, "policy", "x", "y", 1, &err), -1);
    cr_expect_str_eq(err.text, "no group 999");
    jg_group_row_t g;
    cr_expect_eq(jg_store_get_group(s, 999, &g, &err), -1);
    cr_expect_str_eq(err.text, "no group 999");
    cr_expect_eq(count_events(s, id), 1);
    jg_store_close(s);
}

/* ---- queries ---- */

static size_t list_ids(jg_store_t *s, jg_group_filter_t f, int64_t *ids, size_t max)
{
    jg_group_row_t *rows;
    size_t n;
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_list_groups(s, &f, &rows, &n, &err), 0, "%s", err.text);
    cr_assert_leq(n, max);
    for (size_t i = 0; i < n; i++)
        ids[i] = rows[i].id;
    jg_group_rows_free(rows, n);
    return n;
}

/* The queue's pages: after_id is a cursor, limit takes the lowest ids, and
 * both combine with every filter (each statement binds them). */
Test(store, list_groups_pages_from_a_cursor)
{
    jg_store_t *s = open_ok();
    int64_t g[6];
    for (int i = 0; i < 6; i++)
        g[i] = add(s, i % 2 ? "bob" : "alice", 1);
    cr_assert_eq(jg_store_set_group_state(s, g[1], JG_SUCCEEDED, "", 100, NULL), 0);
    cr_assert_eq(jg_store_set_group_state(s, g[4], JG_SUCCEEDED, "", 300, NULL), 0);
    int64_t ids[8];

    cr_assert_eq(list_ids(s, (jg_group_filter_t){.limit = 4}, ids, 8), 4);
    cr_expect(ids[0] == g[0] && ids[3] == g[3]);
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.after_id = g[3], .limit = 4}, ids, 8), 2);
    cr_expect(ids[0] == g[4] && ids[1] == g[5], "the next page starts after the cursor");
    cr_expect_eq(list_ids(s, (jg_group_filter_t){.after_id = g[5], .limit = 4}, ids, 8), 0);

    /* active only: g0 g2 g3 g5 */
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.active_only = true, .after_id = g[0],
                                                  .limit = 2}, ids, 8), 2);
    cr_expect(ids[0] == g[2] && ids[1] == g[3]);
    /* recent (the UNION): active plus g4 ended at 300 */
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.ended_after_us = 200, .after_id = g[2],
                                                  .limit = 2}, ids, 8), 2);
    cr_expect(ids[0] == g[3] && ids[1] == g[4], "the limit applies to the merged list");
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.user = "bob", .after_id = g[1]}, ids, 8), 2);
    cr_expect(ids[0] == g[3] && ids[1] == g[5]);
    jg_store_close(s);
}

static int64_t add_named(jg_store_t *s, const char *user, const char *name)
{
    jg_group_spec_t spec = test_spec;
    spec.name = (char *)name;
    jg_error_t err = {{0}};
    int64_t id = 0;
    cr_assert_eq(jg_store_add_group(s, &spec, "{\"name\":\"x\"}", 1000, 100, user, 1, &id, &err),
                 0, "%s", err.text);
    return id;
}

#define BIT(state) (1u << (state))

/* `queue -n`, `-s` and `-u` (docs/protocol.md, queue): each shape of filter
 * is a statement of its own, and every one pages from the cursor in id order. */
Test(store, list_groups_by_name_state_and_user)
{
    jg_store_t *s = open_ok();
    int64_t t0 = add_named(s, "alice", "train-0");   /* SUCCEEDED */
    int64_t e = add_named(s, "bob", "eval");           /* RUNNING */
    int64_t t1 = add_named(s, "bob", "train-1");      /* FAILED */
    int64_t t2 = add_named(s, "alice", "train-2");    /* PENDING */
    int64_t tr = add_named(s, "alice", "train");      /* PENDING */
    int64_t o = add_named(s, "alice", "trains");      /* CANCELLED */
    cr_assert_eq(jg_store_set_group_state(s, t0, JG_SUCCEEDED, "", 100, NULL), 0);
    cr_assert_eq(jg_store_set_group_state(s, e, JG_RUNNING, "", 100, NULL), 0);
    cr_assert_eq(jg_store_set_group_state(s, t1, JG_FAILED, "", 200, NULL), 0);
    cr_assert_eq(jg_store_set_group_state(s, o, JG_CANCELLED, "", 300, NULL), 0);
    int64_t ids[8];

    cr_assert_eq(list_ids(s, (jg_group_filter_t){.name = "train"}, ids, 8), 1, "exact name");
    cr_expect_eq(ids[0], tr);
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.name = "train-*"}, ids, 8), 3, "a prefix");
    cr_expect(ids[0] == t0 && ids[1] == t1 && ids[2] == t2);
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.name = "train*"}, ids, 8), 5);
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.name = "train-*", .after_id = t0, .limit = 1},
                          ids, 8), 1);
    cr_expect_eq(ids[0], t1, "a prefix pages in id order");
    cr_expect_eq(list_ids(s, (jg_group_filter_t){.name = "*"}, ids, 8), 6, "empty prefix: all");
    cr_expect_eq(list_ids(s, (jg_group_filter_t){.name = "nope*"}, ids, 8), 0);
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.name = "train-*", .user = "alice"}, ids, 8),
                 2);
    cr_expect(ids[0] == t0 && ids[1] == t2);

    /* one state: the index in id order */
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.states = BIT(JG_PENDING)}, ids, 8), 2);
    cr_expect(ids[0] == t2 && ids[1] == tr);
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.states = BIT(JG_PENDING), .after_id = t2},
                          ids, 8), 1);
    cr_expect_eq(ids[0], tr);
    /* several active states */
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.states = BIT(JG_PENDING) | BIT(JG_RUNNING),
                                                  .limit = 2}, ids, 8), 2);
    cr_expect(ids[0] == e && ids[1] == t2, "the limit takes the lowest ids");
    /* terminal ones too, and states override active_only and the window */
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.states = BIT(JG_SUCCEEDED) | BIT(JG_FAILED) |
                                                            BIT(JG_PENDING),
                                                  .active_only = true, .ended_after_us = 999},
                          ids, 8), 4);
    cr_expect(ids[0] == t0 && ids[1] == t1 && ids[2] == t2 && ids[3] == tr);
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.states = BIT(JG_SUCCEEDED) | BIT(JG_FAILED),
                                                  .user = "bob"}, ids, 8), 1);
    cr_expect_eq(ids[0], t1);
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.states = BIT(JG_CANCELLED),
                                                  .name = "trains"}, ids, 8), 1);
    cr_expect_eq(ids[0], o);
    cr_expect_eq(list_ids(s, (jg_group_filter_t){.states = BIT(JG_CANCELLED), .name = "eval"},
                          ids, 8), 0);

    /* the recent window with a name and a user */
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.ended_after_us = 150, .name = "train*",
                                                  .user = "alice"}, ids, 8), 3);
    cr_expect(ids[0] == t2 && ids[1] == tr && ids[2] == o);

    /* summary rows leave the spec out, and only the spec */
    jg_group_row_t *rows;
    size_t n;
    cr_assert_eq(jg_store_list_groups(s, &(jg_group_filter_t){.summary = true, .name = "eval"},
                                      &rows, &n, NULL), 0);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(rows[0].spec_json, "");
    cr_expect_str_eq(rows[0].name, "eval");
    cr_expect_str_eq(rows[0].user, "bob");
    cr_expect_eq(rows[0].state, JG_RUNNING);
    jg_group_rows_free(rows, n);
    cr_assert_eq(jg_store_list_groups(s, &(jg_group_filter_t){.name = "eval"}, &rows, &n,
                                      NULL), 0);
    cr_expect_str_eq(rows[0].spec_json, "{\"name\":\"x\"}");
    jg_group_rows_free(rows, n);
    jg_store_close(s);
}

/* What the default queue leaves out: terminal groups ended at or before the
 * window's start, counted with the same user and name filters. */
Test(store, count_ended_counts_what_the_window_leaves_out)
{
    jg_store_t *s = open_ok();
    int64_t a = add_named(s, "alice", "a-1"), b = add_named(s, "bob", "b-1");
    int64_t c = add_named(s, "alice", "a-2");
    add_named(s, "alice", "a-3");   /* pending: never counted */
    cr_assert_eq(jg_store_set_group_state(s, a, JG_SUCCEEDED, "", 100, NULL), 0);
    cr_assert_eq(jg_store_set_group_state(s, b, JG_FAILED, "", 200, NULL), 0);
    cr_assert_eq(jg_store_set_group_state(s, c, JG_CANCELLED, "", 300, NULL), 0);
    jg_error_t err = {{0}};
    int64_t n = -1;
    cr_assert_eq(jg_store_count_ended(s, NULL, NULL, 200, &n, &err), 0, "%s", err.text);
    cr_expect_eq(n, 2, "at or before");
    cr_assert_eq(jg_store_count_ended(s, NULL, NULL, 1000, &n, &err), 0);
    cr_expect_eq(n, 3);
    cr_assert_eq(jg_store_count_ended(s, NULL, NULL, 99, &n, &err), 0);
    cr_expect_eq(n, 0);
    cr_assert_eq(jg_store_count_ended(s, "alice", NULL, 1000, &n, &err), 0);
    cr_expect_eq(n, 2);
    cr_assert_eq(jg_store_count_ended(s, "alice", "a-*", 200, &n, &err), 0);
    cr_expect_eq(n, 1);
    cr_assert_eq(jg_store_count_ended(s, NULL, "b-1", 1000, &n, &err), 0);
    cr_expect_eq(n, 1);
    jg_store_close(s);
}

Test(store, list_groups_filter_semantics)
{
    jg_store_t *s = open_ok();
    int64_t a1 = add(s, "alice", 1);    /* running */
    int64_t a2 = add(s, "alice", 1);    /* ended at 100 */
    int64_t b1 = add(s, "bob", 1);      /* pending */
    int64_t b2 = add(s, "bob", 1);      /* ended at 300 */
    cr_assert_eq(jg_store_set_group_state(s, a1, JG_RUNNING, "", 50, NULL), 0);
    cr_assert_eq(jg_store_set_group_state(s, a2, JG_SUCCEEDED, "", 100, NULL), 0);
    cr_assert_eq(jg_store_set_group_state(s, b2, JG_FAILED_SETUP, "", 300, NULL), 0);
    int64_t ids[8];

    cr_expect_eq(list_ids(s, (jg_group_filter_t){0}, ids, 8), 4);
    cr_expect(ids[0] == a1 && ids[1] == a2 && ids[2] == b1 && ids[3] == b2, "ordered by id");

    cr_assert_eq(list_ids(s, (jg_group_filter_t){.active_only = true}, ids, 8), 2);
    cr_expect(ids[0] == a1 && ids[1] == b1);

    /* ended_after is ignored with active_only */
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.active_only = true, .ended_after_us = 200},
                          ids, 8), 2);

    cr_assert_eq(list_ids(s, (jg_group_filter_t){.ended_after_us = 200}, ids, 8), 3);
    cr_expect(ids[0] == a1 && ids[1] == b1 && ids[2] == b2);
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.ended_after_us = 300}, ids, 8), 2,
                 "strictly after");

    cr_assert_eq(list_ids(s, (jg_group_filter_t){.user = "alice"}, ids, 8), 2);
    cr_expect(ids[0] == a1 && ids[1] == a2);
    cr_assert_eq(list_ids(s, (jg_group_filter_t){.user = "bob", .active_only = true}, ids, 8),
                 1);
    cr_expect_eq(ids[0], b1);
    cr_expect_eq(list_ids(s, (jg_group_filter_t){.user = "carol"}, ids, 8), 0);

    cr_assert_eq(list_ids(s, (jg_group_filter_t){.group_id = a2}, ids, 8), 1);
    cr_expect_eq(ids[0], a2);
    cr_expect_eq(list_ids(s, (jg_group_filter_t){.group_id = a2, .active_only = true}, ids, 8),
                 0);
    cr_expect_eq(list_ids(s, (jg_group_filter_t){.group_id = a2, .ended_after_us = 100}, ids,
                          8), 0);
    cr_expect_eq(list_ids(s, (jg_group_filter_t){.group_id = a2, .ended_after_us = 99}, ids,
                          8), 1);
    cr_expect_eq(list_ids(s, (jg_group_filter_t){.group_id = a1, .user = "bob"}, ids, 8), 0);
    cr_expect_eq(list_ids(s, (jg_group_filter_t){.group_id = 999}, ids, 8), 0);

    jg_group_row_t *rows;
    size_t n;
    cr_assert_eq(jg_store_list_groups(s, NULL, &rows, &n, NULL), 0);
    cr_expect_eq(n, 4, "a NULL filter lists everything");
    jg_group_rows_free(rows, n);
    jg_store_close(s);
}

Test(store, list_jobs_of_all_groups_orders_by_group_then_index)
{
    jg_store_t *s = open_ok();
    int64_t a = add(s, "alice", 1), b = add(s, "bob", 1);
    jg_job_row_t *jobs;
    size_t n;
    cr_assert_eq(jg_store_list_jobs(s, 0, &jobs, &n, NULL), 0);
    cr_assert_eq(n, 4);
    cr_expect(jobs[0].group_id == a && jobs[0].index == 0);
    cr_expect(jobs[1].group_id == a && jobs[1].index == 1);
    cr_expect(jobs[2].group_id == b && jobs[2].index == 0);
    cr_expect(jobs[3].group_id == b && jobs[3].index == 1);
    jg_job_rows_free(jobs, n);
    cr_assert_eq(jg_store_list_jobs(s, 12345, &jobs, &n, NULL), 0);
    cr_expect_eq(n, 0);
    jg_job_rows_free(jobs, n);
    jg_store_close(s);
}

/* ---- transactions ---- */

Test(store, rollback_leaves_nothing)
{
    jg_store_t *s = open_ok();
    jg_error_t err = {{0}};
    int64_t id = 0;
    cr_assert_eq(jg_store_begin(s, &err), 0, "%s", err.text);
    cr_assert_eq(jg_store_add_group(s, &test_spec, "{}", 1, 1, "alice", 1, &id, &err), 0);
    cr_assert_eq(jg_store_set_group_state(s, id, JG_STARTING, "x", 2, &err), 0);
    cr_assert_eq(jg_store_set_job_state(s, id, 0, JG_STARTING, "x", 2, &err), 0);
    jg_store_rollback(s);

    jg_group_row_t *rows;
    size_t n;
    cr_assert_eq(jg_store_list_groups(s, NULL, &rows, &n, NULL), 0);
    cr_expect_eq(n, 0);
    jg_group_rows_free(rows, n);
    jg_job_row_t *jobs;
    cr_assert_eq(jg_store_list_jobs(s, 0, &jobs, &n, NULL), 0);
    cr_expect_eq(n, 0);
    jg_job_rows_free(jobs, n);
    cr_expect_eq(count_events(s, id), 0);
    jg_store_close(s);

    sqlite3 *db = raw_open(db_path);
    cr_expect_eq(raw_int(db, "SELECT count(*) FROM nodes"), 0);
    cr_expect_eq(raw_int(db, "SELECT count(*) FROM events"), 0);
    sqlite3_close(db);
}

Test(store, commit_keeps_work_and_a_failed_setter_inside_leaves_no_trace)
{
    jg_store_t *s = open_ok();
    jg_error_t err = {{0}};
    int64_t id = 0;
    cr_assert_eq(jg_store_begin(s, &err), 0);
    cr_expect_eq(jg_store_begin(s, &err), -1, "no nested begin");
    cr_assert_eq(jg_store_add_group(s, &test_spec, "{}", 1, 1, "alice", 1, &id, &err), 0);
    cr_assert_eq(jg_store_set_group_state(s, id, JG_STARTING, "x", 2, &err), 0);
    cr_expect_eq(jg_store_set_job_state(s, id, 9, JG_STARTING, "x", 2, &err), -1);
    cr_assert_eq(jg_store_commit(s, &err), 0, "%s", err.text);
    cr_expect_eq(jg_store_commit(s, &err), -1, "commit without begin");

    jg_group_row_t g;
    cr_assert_eq(jg_store_get_group(s, id, &g, &err), 0);
    cr_expect_eq(g.state, JG_STARTING);
    jg_group_row_clear(&g);
    cr_expect_eq(count_events(s, id), 2);

    /* a second store on the same file sees the committed work */
    jg_store_t *t = open_ok();
    cr_expect_eq(count_events(t, id), 2);
    jg_store_close(t);
    jg_store_close(s);
}

Test(store, close_with_open_transaction_rolls_back)
{
    jg_store_t *s = open_ok();
    int64_t id = 0;
    cr_assert_eq(jg_store_begin(s, NULL), 0);
    cr_assert_eq(jg_store_add_group(s, &test_spec, "{}", 1, 1, "alice", 1, &id, NULL), 0);
    jg_store_close(s);
    s = open_ok();
    jg_group_row_t g;
    cr_expect_eq(jg_store_get_group(s, id, &g, NULL), -1);
    jg_store_close(s);
}

/* ---- refusing files ---- */

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

Test(store, refuses_a_file_that_is_not_a_database_and_leaves_it_alone)
{
    char garbage[4096];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (char)(i * 7 + 3);
    write_file(db_path, garbage, sizeof garbage);

    jg_error_t err = {{0}};
    cr_assert_null(jg_store_open(db_path, &err));
    char want[256];
    snprintf(want, sizeof want, "%s is not a jgsched store (file is not a database)", db_path);
    cr_expect_str_eq(err.text, want);

    size_t len;
    char *after = read_all(db_path, &len);
    cr_expect_eq(len, sizeof garbage);
    cr_expect_eq(memcmp(after, garbage, sizeof garbage), 0, "the file was modified");
    free(after);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    cr_expect_neq(access(wal, F_OK), 0, "a -wal file was left behind");
}

Test(store, refuses_a_store_with_a_corrupt_schema_page)
{
    jg_store_t *s = open_ok();
    add(s, "alice", 1);
    jg_store_close(s);
    size_t len;
    char *data = read_all(db_path, &len);
    cr_assert_gt(len, 200);
    memset(data + 100, 0xA5, 100);  /* page 1 b-tree header and cell pointers */
    write_file(db_path, data, len);
    free(data);

    jg_error_t err = {{0}};
    cr_expect_null(jg_store_open(db_path, &err));
    cr_expect(strstr(err.text, "is not a jgsched store") != NULL, "%s", err.text);
}

Test(store, refuses_a_newer_schema_without_touching_it)
{
    jg_store_close(open_ok());
    sqlite3 *db = raw_open(db_path);
    raw_exec(db, "PRAGMA user_version = 99");
    sqlite3_close(db);

    jg_error_t err = {{0}};
    cr_assert_null(jg_store_open(db_path, &err));
    char want[256];
    snprintf(want, sizeof want,
             "%s was written by a newer jgsched (schema 99, this build knows 5); "
             "refusing to open it", db_path);
    cr_expect_str_eq(err.text, want);

    db = raw_open(db_path);
    cr_expect_eq(raw_int(db, "PRAGMA user_version"), 99);
    sqlite3_close(db);
}

Test(store, refuses_a_foreign_sqlite_database_without_touching_it)
{
    sqlite3 *db = raw_open(db_path);
    raw_exec(db, "CREATE TABLE groups (x); INSERT INTO groups VALUES (1)");
    sqlite3_close(db);

    jg_error_t err = {{0}};
    cr_assert_null(jg_store_open(db_path, &err));
    cr_expect(strstr(err.text, "is not a jgsched store") != NULL, "%s", err.text);
    cr_expect(strncmp(err.text, db_path, strlen(db_path)) == 0, "names the file: %s", err.text);

    db = raw_open(db_path);
    cr_expect_eq(raw_int(db, "PRAGMA user_version"), 0);
    cr_expect_eq(raw_int(db, "PRAGMA application_id"), 0);
    cr_expect_eq(raw_int(db, "SELECT count(*) FROM sqlite_schema"), 1);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "delete", "journal mode changed");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

Test(store, open_error_names_the_path)
{
    char bad[192];
    snprintf(bad, sizeof bad, "%s/missing-dir/x.db", dir);
    jg_error_t err = {{0}};
    cr_assert_null(jg_store_open(bad, &err));
    cr_expect(strstr(err.text, bad) != NULL, "%s", err.text);
}

/* ---- concurrency and speed ---- */

#define WRITERS 4
#define PER_WRITER 100

/* Child: opens its own store on the (possibly not yet created) file and adds
 * its groups.  Exit status 0 only if every call succeeded. */
static void writer(int w)
{
    jg_error_t err = {{0}};
    jg_store_t *s = jg_store_open(db_path, &err);
    if (!s) {
        fprintf(stderr, "writer %d: %s\n", w, err.text);
        _exit(1);
    }
    char user[16];
    snprintf(user, sizeof user, "user%d", w);
    int status = 0;
    for (int i = 0; i < PER_WRITER && status == 0; i++) {
        int64_t id;
        if (jg_store_add_group(s, &test_spec, "{}", 1, 1, user, i, &id, &err) < 0 ||
            jg_store_set_group_state(s, id, JG_STARTING, "go", i, &err) < 0) {
            fprintf(stderr, "writer %d: %s\n", w, err.text);
            status = 2;
        }
    }
    jg_store_close(s);
    _exit(status);
}

Test(store, concurrent_writers_in_separate_processes_all_succeed)
{
    pid_t pids[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        cr_assert_geq(pids[w], 0);
        if (pids[w] == 0)
            writer(w);
    }
    int failed = 0;
    for (int w = 0; w < WRITERS; w++) {
        int status;
        cr_assert_eq(waitpid(pids[w], &status, 0), pids[w]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    }
    cr_assert_eq(failed, 0, "%d writers failed (see stderr)", failed);

    jg_store_t *s = open_ok();
    jg_group_row_t *rows;
    size_t n;
    cr_assert_eq(jg_store_list_groups(s, NULL, &rows, &n, NULL), 0);
    cr_expect_eq(n, WRITERS * PER_WRITER);
    for (size_t i = 1; i < n; i++)
        cr_expect_gt(rows[i].id, rows[i - 1].id, "ids unique and ordered");
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(rows[i].state, JG_STARTING);
    jg_group_rows_free(rows, n);
    jg_node_row_t *nodes;
    cr_assert_eq(jg_store_list_nodes(s, 1, &nodes, &n, NULL), 0);
    cr_expect_eq(n, 3);
    jg_node_rows_free(nodes, n);
    jg_store_close(s);
}

Test(store, volumes_are_added_listed_found_and_removed_once)
{
    jg_store_t *s = open_ok();
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_add_volume(s, "shared", "/srv/v/shared", 1000, "alice", 10, &err), 0,
                 "%s", err.text);
    cr_assert_eq(jg_store_add_volume(s, "data", "/srv/v/data", 1001, "bob", 11, &err), 0);
    cr_assert_eq(jg_store_add_volume(s, "shared", "/elsewhere", 1, "x", 12, &err), -1);
    cr_assert_str_eq(err.text, "volume shared already exists");
    jg_volume_row_t v;
    cr_assert_eq(jg_store_get_volume(s, "shared", &v, &err), 0);
    cr_expect_str_eq(v.path, "/srv/v/shared");
    cr_expect_eq(v.uid, 1000);
    cr_expect_str_eq(v.user, "alice");
    cr_expect_eq(v.created_us, 10);
    jg_volume_row_clear(&v);
    jg_volume_row_t *rows;
    size_t n;
    cr_assert_eq(jg_store_list_volumes(s, &rows, &n, &err), 0);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(rows[0].name, "data", "listed by name");
    jg_volume_rows_free(rows, n);
    cr_assert_eq(jg_store_remove_volume(s, "shared", &err), 0);
    cr_assert_eq(jg_store_remove_volume(s, "shared", &err), -1);
    cr_expect_str_eq(err.text, "no volume shared");
    cr_assert_eq(jg_store_get_volume(s, "shared", &v, &err), -1);
    jg_store_close(s);
}

Test(store, a_version_1_store_is_migrated_and_keeps_its_groups)
{
    jg_store_t *s = open_ok();
    int64_t id = add(s, "alice", 5);
    jg_store_close(s);
    /* Turn it back into what the first release wrote. */
    sqlite3 *db = raw_open(db_path);
    raw_exec(db, "DROP TABLE volumes; ALTER TABLE jobs DROP COLUMN restart_count;"
                 "ALTER TABLE jobs DROP COLUMN restart_due_us;"
                 "ALTER TABLE jobs DROP COLUMN free_restarts;"
                 "ALTER TABLE groups DROP COLUMN policy_text; DROP INDEX groups_user;"
                 "DROP INDEX groups_name; PRAGMA user_version = 1;");
    sqlite3_close(db);
    s = open_ok();
    jg_error_t err = {{0}};
    jg_group_row_t g;
    cr_assert_eq(jg_store_get_group(s, id, &g, &err), 0, "%s", err.text);
    jg_group_row_clear(&g);
    cr_assert_eq(jg_store_add_volume(s, "v", "/v", 0, "root", 1, &err), 0, "%s", err.text);
    jg_store_close(s);
    db = raw_open(db_path);
    cr_expect_eq(raw_int(db, "PRAGMA user_version"), 5);
    sqlite3_close(db);
}

/* Groups stored before policies could travel as text have none, and keep
 * working; a group's text round-trips whole. */
Test(store, a_version_2_store_gets_policy_text_and_old_groups_have_none)
{
    jg_store_t *s = open_ok();
    int64_t old = add(s, "alice", 5);
    jg_store_close(s);
    sqlite3 *db = raw_open(db_path);
    raw_exec(db, "ALTER TABLE groups DROP COLUMN policy_text; DROP INDEX groups_user;"
                 "DROP INDEX groups_name; PRAGMA user_version = 3;");
    sqlite3_close(db);
    s = open_ok();
    jg_error_t err = {{0}};
    char *text = (char *)"untouched";
    size_t len = 7;
    cr_assert_eq(jg_store_get_group_policy_text(s, old, &text, &len, &err), 0, "%s", err.text);
    cr_expect_null(text);
    cr_expect_eq(len, 0);
    int64_t id = add(s, "bob", 6);
    const char *lua = "return { on_node_exit = function() return 'fail_group' end }\n";
    cr_assert_eq(jg_store_set_group_policy_text(s, id, lua, strlen(lua), &err), 0, "%s",
                 err.text);
    cr_assert_eq(jg_store_get_group_policy_text(s, id, &text, &len, &err), 0, "%s", err.text);
    cr_expect_str_eq(text, lua);
    cr_expect_eq(len, strlen(lua));
    free(text);
    cr_expect_eq(jg_store_get_group_policy_text(s, 99999, &text, &len, &err), -1);
    cr_expect_str_eq(err.text, "no group 99999");
    cr_expect_eq(jg_store_set_group_policy_text(s, 99999, lua, 3, &err), -1);
    jg_store_close(s);
    db = raw_open(db_path);
    cr_expect_eq(raw_int(db, "PRAGMA user_version"), 5);
    sqlite3_close(db);
}

Test(store, jobs_of_listed_groups_come_in_group_then_index_order)
{
    jg_store_t *s = open_ok();
    int64_t a = add(s, "alice", 1), b = add(s, "bob", 2), c = add(s, "carol", 3);
    jg_error_t err = {{0}};
    jg_job_row_t *jobs;
    size_t n;
    int64_t ids[] = {c, a, 99999};
    cr_assert_eq(jg_store_list_jobs_of(s, ids, 3, &jobs, &n, &err), 0, "%s", err.text);
    cr_assert_eq(n, 4, "two jobs each of groups %lld and %lld, none of %lld", (long long)a,
                 (long long)c, (long long)b);
    cr_expect_eq(jobs[0].group_id, a);
    cr_expect_eq(jobs[0].index, 0);
    cr_expect_eq(jobs[1].index, 1);
    cr_expect_eq(jobs[2].group_id, c);
    cr_expect_eq(jobs[3].group_id, c);
    jg_job_rows_free(jobs, n);
    cr_assert_eq(jg_store_list_jobs_of(s, ids, 0, &jobs, &n, &err), 0, "%s", err.text);
    cr_expect_eq(n, 0, "no group listed: no job");
    jg_job_rows_free(jobs, n);
    jg_store_close(s);
}
