/* store.c - every persistent fact of a jgsched instance, in one SQLite file.
 *
 * This is the only file that writes SQL.  It is laid out in the order a store
 * lives:
 *
 *   1. schema and migrations: an ordered array of scripts; script i moves the
 *      schema from version i to i+1 and PRAGMA user_version records how far a
 *      file got.  PRAGMA application_id marks the file as ours.
 *   2. open: before touching anything, the file is probed (is it SQLite at
 *      all, is it ours or another program's, is it from a newer jgsched) so a
 *      refused file is left exactly as it was.  Only then WAL is switched on and
 *      the migrations run inside BEGIN IMMEDIATE, where the probe is repeated:
 *      several processes may open a fresh file at once and exactly one of them
 *      creates the schema.
 *   3. the statements table: every statement is prepared once at open and
 *      reused (bind, step, reset), which is what makes 1,000 submissions take
 *      milliseconds rather than seconds.
 *   4. transactions: jg_store_begin opens BEGIN IMMEDIATE (the write lock up
 *      front, so a second writer waits in the busy handler instead of failing
 *      with "database is locked" on lock upgrade).  Every setter is atomic: on
 *      its own it runs in a transaction of its own; inside the caller's
 *      transaction it runs under a SAVEPOINT, so a setter that fails half way
 *      leaves no trace even there, and the caller decides about the rest.
 *   5. setters: each changes its row and appends an event row in the same
 *      transaction, so `jgsched show` can replay the history.
 *   6. queries, then 7. the row frees.
 *
 * States are stored by name ("RUNNING"), not by enum value, so the file stays
 * readable with the sqlite3 shell and survives a reordering of the enum.  The
 * index on groups(state) serves the active-group query (state IN (...)), which
 * therefore costs the same with 100 or 100,000 finished groups.
 */
#include "jgsched/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdint.h>
#include <string.h>

#define JG_STORE_APP_ID 0x4A475344      /* "JGSD" in the file header */
#define JG_STORE_BUSY_MS 5000

/* ---- 1. schema and migrations ------------------------------------------- */

static const char *const migrations[] = {
    /* 0 -> 1: the initial schema */
    "CREATE TABLE groups ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"       /* AUTOINCREMENT: ids never reused */
    "  name TEXT NOT NULL,"
    "  user TEXT NOT NULL,"
    "  uid INTEGER NOT NULL,"
    "  gid INTEGER NOT NULL,"
    "  state TEXT NOT NULL,"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  spec_json TEXT NOT NULL,"
    "  infra TEXT NOT NULL DEFAULT '',"
    "  submitted_us INTEGER NOT NULL,"
    "  started_us INTEGER NOT NULL DEFAULT 0,"
    "  ended_us INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX groups_state ON groups(state);"
    "CREATE INDEX groups_ended ON groups(ended_us);"
    "CREATE TABLE jobs ("
    "  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  num_nodes INTEGER NOT NULL,"
    "  state TEXT NOT NULL,"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  attempt INTEGER NOT NULL DEFAULT 1,"
    "  restarts INTEGER NOT NULL DEFAULT 0,"
    "  recoveries INTEGER NOT NULL DEFAULT 0,"
    "  exit_code INTEGER NOT NULL DEFAULT -1,"
    "  started_us INTEGER NOT NULL DEFAULT 0,"
    "  ended_us INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (group_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE nodes ("
    "  group_id INTEGER NOT NULL,"
    "  job_idx INTEGER NOT NULL,"
    "  rank INTEGER NOT NULL,"
    "  state TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL DEFAULT 1,"
    "  exit_code INTEGER NOT NULL DEFAULT -1,"
    "  hostname TEXT NOT NULL,"
    "  address TEXT NOT NULL DEFAULT '',"
    "  handle TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY (group_id, job_idx, rank),"
    "  FOREIGN KEY (group_id, job_idx) REFERENCES jobs(group_id, idx) ON DELETE CASCADE"
    ") WITHOUT ROWID;"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,"
    "  ts_us INTEGER NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  what TEXT NOT NULL,"
    "  reason TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX events_group ON events(group_id);",   /* rowid in the index: ordered by id */
    /* 1 -> 2: named shared volumes created with `jgsched volume create` */
    "CREATE TABLE volumes ("
    "  name TEXT PRIMARY KEY,"
    "  path TEXT NOT NULL,"
    "  uid INTEGER NOT NULL,"
    "  user TEXT NOT NULL,"
    "  created_us INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    /* 2 -> 3: a restart that waits for its delay (or for its nodes to stop)
     * survives a daemon restart with the counter it is charged to and its
     * deadline; the total of restarts of every kind. */
    "ALTER TABLE jobs ADD COLUMN restart_count INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE jobs ADD COLUMN restart_due_us INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN free_restarts INTEGER NOT NULL DEFAULT 0;",
    /* 3 -> 4: a policy the submitter sent as Lua text (jgsched submit --policy
     * FILE), kept with its group so that a restarted daemon still has it; NULL
     * when the group uses an installed policy (by name) */
    "ALTER TABLE groups ADD COLUMN policy_text TEXT;",
    /* 4 -> 5: `jgsched queue -u USER` and `-n NAME` page through a store of
     * 100,000 groups by index; the rowid at the end of each entry keeps a
     * user's (a name's) groups in id order, the order of the pages. */
    "CREATE INDEX groups_user ON groups(user);"
    "CREATE INDEX groups_name ON groups(name);",
};

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- the store ----------------------------------------------------------- */

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_INSERT_GROUP,
    ST_INSERT_JOB,
    ST_INSERT_NODE,
    ST_INSERT_EVENT,
    ST_SET_GROUP_STATE,
    ST_SET_GROUP_INFRA,
    ST_SET_JOB_STATE,
    ST_JOB_EVENT,
    ST_JOB_NEW_ATTEMPT,
    ST_JOB_ATTEMPT_EVENT,
    ST_SET_JOB_EXIT,
    ST_SET_JOB_RESTART,
    ST_PUT_JOB,
    ST_SET_NODE_STATE,
    ST_NODE_EVENT,
    ST_SET_NODE_HANDLE,
    ST_GET_GROUP,
    ST_GROUP_FILTERED,
    ST_JOBS_OF_GROUP,
    ST_JOBS_ALL,
    ST_NODES,
    ST_EVENTS,
    ST_JOBS_OF_GROUPS,
    ST_INSERT_VOLUME,
    ST_GET_VOLUME,
    ST_VOLUMES,
    ST_DELETE_VOLUME,
    ST_SET_POLICY_TEXT,
    ST_GET_POLICY_TEXT,
    ST_COUNT
};

/* The listings (jg_store_list_groups) are built from the filter's shape and
 * prepared on first use: which index serves a page depends on which filters
 * are set, and one generic WHERE with "?x IS NULL OR ..." would defeat them. */
enum list_mode {
    LIST_ALL,           /* every group */
    LIST_ACTIVE,        /* non-terminal groups */
    LIST_RECENT,        /* non-terminal ones and those ended after ?4 */
    LIST_STATE_ONE,     /* one state (?7) */
    LIST_STATES_ACTIVE, /* several states (?7, a JSON array), all non-terminal: few groups */
    LIST_STATES_SCAN,   /* several states, some terminal: id order, no sort */
    LIST_MODES
};
enum { NAME_ANY, NAME_EXACT, NAME_PREFIX, NAME_KINDS };
#define LIST_SHAPES (LIST_MODES * 2 * NAME_KINDS * 2)
#define COUNT_SHAPES (2 * NAME_KINDS)

struct jg_store {
    sqlite3 *db;
    char *path;
    int depth;                  /* 1 while the caller's jg_store_begin is open */
    sqlite3_stmt *st[ST_COUNT];
    char *active_sql;           /* "'PENDING','STARTING',...", for the built statements */
    sqlite3_stmt *list_st[LIST_SHAPES];     /* built on first use */
    sqlite3_stmt *count_st[COUNT_SHAPES];
};

static int db_err(jg_store_t *s, jg_error_t *err, const char *what)
{
    return jg_errprintf(err, "%s: %s: %s (sqlite error %d)", s->path, what,
                        sqlite3_errmsg(s->db), sqlite3_extended_errcode(s->db));
}

/* ---- 2. open and migrate ------------------------------------------------- */

static int exec_sql(jg_store_t *s, const char *sql, const char *what, jg_error_t *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_err(s, err, what);
    return 0;
}

/* Runs a statement that yields one row of integers (a PRAGMA, a count) into
 * out[0..n-1]; returns an SQLite result code. */
static int query_ints(jg_store_t *s, const char *sql, int64_t *out, int n)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            for (int i = 0; i < n; i++)
                out[i] = sqlite3_column_int64(st, i);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* Reads what the file is without writing to it; sets *version to its schema
 * version (0: empty, to be created).  Refuses a non-database, a corrupt file,
 * another program's database and a newer schema. */
static int probe(jg_store_t *s, int *version, jg_error_t *err)
{
    /* One statement, so the three values come from one snapshot: another
     * process may be creating the schema right now. */
    int64_t v[3] = {0, 0, 0};
    int rc = query_ints(s, "SELECT (SELECT * FROM pragma_application_id()),"
                           " (SELECT * FROM pragma_user_version()),"
                           " (SELECT count(*) FROM sqlite_schema)", v, 3);
    int64_t app_id = v[0], user_version = v[1], tables = v[2];
    if (rc != SQLITE_OK) {
        int primary = sqlite3_extended_errcode(s->db) & 0xff;
        if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
            return jg_errprintf(err, "%s is not a jgsched store (%s)", s->path,
                                sqlite3_errmsg(s->db));
        return db_err(s, err, "cannot read the store");
    }
    if (app_id != JG_STORE_APP_ID && (app_id != 0 || tables > 0 || user_version != 0))
        return jg_errprintf(err, "%s is not a jgsched store (a SQLite database of another "
                                 "application: application_id %lld, %lld schema objects); "
                                 "refusing to open it", s->path,
                            (long long)app_id, (long long)tables);
    if (user_version > SCHEMA_VERSION)
        return jg_errprintf(err, "%s was written by a newer jgsched (schema %lld, this build "
                                 "knows %d); refusing to open it", s->path,
                            (long long)user_version, SCHEMA_VERSION);
    if (user_version < 0)
        return jg_errprintf(err, "%s is not a jgsched store (schema version %lld)", s->path,
                            (long long)user_version);
    *version = (int)user_version;
    return 0;
}

/* Brings the schema up to SCHEMA_VERSION under the write lock.  The probe is
 * repeated inside: another process may have migrated while we waited. */
static int migrate(jg_store_t *s, jg_error_t *err)
{
    int version = 0;
    if (exec_sql(s, "BEGIN IMMEDIATE", "cannot lock the store to migrate it", err) < 0)
        return -1;
    if (probe(s, &version, err) < 0)
        goto fail;
    if (version == SCHEMA_VERSION)
        return exec_sql(s, "COMMIT", "cannot finish opening", err);
    for (int v = version; v < SCHEMA_VERSION; v++) {
        if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
            char what[64];
            snprintf(what, sizeof what, "migrating to schema %d", v + 1);
            db_err(s, err, what);
            goto fail;
        }
    }
    char *pragmas = jg_xasprintf("PRAGMA application_id = %d; PRAGMA user_version = %d",
                                 JG_STORE_APP_ID, SCHEMA_VERSION);
    int rc = exec_sql(s, pragmas, "recording the schema version", err);
    free(pragmas);
    if (rc < 0)
        goto fail;
    return exec_sql(s, "COMMIT", "cannot commit the migration", err);
fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* Switching a fresh file to WAL needs every other connection out of it, and
 * SQLite does not run the busy handler for that (it could deadlock), so when
 * several processes open a new store at once the loser retries here for as
 * long as the busy timeout would have waited.  On a file already in WAL mode
 * this is a no-op read. */
static int set_wal(jg_store_t *s, jg_error_t *err)
{
    for (int waited_ms = 0;; waited_ms += 10) {
        int64_t unused;
        int rc = query_ints(s, "PRAGMA journal_mode = WAL", &unused, 1);
        if (rc == SQLITE_OK)
            return 0;
        if (((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) ||
            waited_ms >= JG_STORE_BUSY_MS)
            return db_err(s, err, "cannot switch to WAL mode");
        sqlite3_sleep(10);
    }
}

static int prepare_all(jg_store_t *s, jg_error_t *err);

/* A brand-new store is built under a temporary name and linked into place
 * whole, so a store file that exists is never a half-created one: an empty
 * file at path is then always damage (a store that lost its contents), which
 * open refuses instead of starting over with ids from 1.  When several
 * processes create the store at once, one link wins and the others use it. */
static int create_store(const char *path, jg_error_t *err)
{
    char *tmp = jg_xasprintf("%s.new.%ld", path, (long)getpid());
    int rc = -1;
    unlink(tmp);        /* a leftover of a creator that died: our pid, so ours */
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        jg_errprintf(err, "%s: cannot create the store: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    close(fd);
    jg_store_t *t = jg_xcalloc(1, sizeof *t);
    t->path = jg_xstrdup(path);     /* messages name the store, not the temporary file */
    if (sqlite3_open_v2(tmp, &t->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        if (t->db)
            db_err(t, err, "cannot create the store");
        else
            jg_errprintf(err, "%s: cannot create the store: out of memory", path);
    } else {
        sqlite3_extended_result_codes(t->db, 1);
        rc = migrate(t, err);
    }
    sqlite3_close_v2(t->db);
    free(t->path);
    free(t);
    if (rc == 0 && link(tmp, path) < 0 && errno != EEXIST)
        rc = jg_errprintf(err, "%s: cannot create the store: %s", path, strerror(errno));
    unlink(tmp);
    free(tmp);
    return rc;
}

static jg_store_t *open_store(const char *path, bool exclusive, jg_error_t *err)
{
    jg_store_t *s = jg_xcalloc(1, sizeof *s);
    bool ok = false;
    s->path = jg_xstrdup(path);
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno != ENOENT) {
            jg_errprintf(err, "%s: cannot open the store: %s", path, strerror(errno));
            goto done;
        }
        if (create_store(path, err) < 0)
            goto done;
    } else if (S_ISREG(st.st_mode) && st.st_size == 0) {
        jg_errprintf(err, "%s is empty (0 bytes), not a jgsched store: the store lost its "
                          "contents; refusing to start over with new group ids (move the file "
                          "away to start a new store)", path);
        goto done;
    }
    /* No SQLITE_OPEN_CREATE: the file exists now; had it vanished since, an
     * empty one must not appear in its place. */
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        if (s->db)
            db_err(s, err, "cannot open the store");
        else
            jg_errprintf(err, "%s: cannot open the store: out of memory", path);
        goto done;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, JG_STORE_BUSY_MS);
    /* Exclusive, before the first access: WAL then keeps its index in the
     * heap instead of the mmap'd -shm file, whose truncation by anyone else
     * would kill the process with SIGBUS (no error, no log line) at its next
     * access.  Also keeps a second process from writing the store meanwhile. */
    if (exclusive && exec_sql(s, "PRAGMA locking_mode = EXCLUSIVE",
                              "cannot lock the store", err) < 0)
        goto done;

    int version;
    if (probe(s, &version, err) < 0)
        goto done;
    /* From here on the file is ours (or empty) and may be written. */
    if (set_wal(s, err) < 0)
        goto done;
    if (exec_sql(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
                 "cannot configure the connection", err) < 0)
        goto done;
    if (migrate(s, err) < 0 || prepare_all(s, err) < 0)
        goto done;
    ok = true;
done:
    if (!ok) {
        jg_store_close(s);
        s = NULL;
    }
    return s;
}

jg_store_t *jg_store_open(const char *path, jg_error_t *err)
{
    return open_store(path, false, err);
}

jg_store_t *jg_store_open_exclusive(const char *path, jg_error_t *err)
{
    return open_store(path, true, err);
}

int jg_store_limit_pages(jg_store_t *s, int64_t max_pages, jg_error_t *err)
{
    char *sql = jg_xasprintf("PRAGMA max_page_count = %lld", (long long)max_pages);
    int rc = exec_sql(s, sql, "cannot limit the store's size", err);
    free(sql);
    return rc;
}

void jg_store_close(jg_store_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    for (int i = 0; i < LIST_SHAPES; i++)
        sqlite3_finalize(s->list_st[i]);
    for (int i = 0; i < COUNT_SHAPES; i++)
        sqlite3_finalize(s->count_st[i]);
    free(s->active_sql);
    sqlite3_close_v2(s->db);    /* rolls back an open transaction */
    free(s->path);
    free(s);
}

/* ---- 3. the statements table --------------------------------------------- */

#define GROUP_COLS "id, name, user, uid, gid, state, reason, spec_json, infra, " \
                   "submitted_us, started_us, ended_us"
#define JOB_COLS "group_id, idx, name, num_nodes, state, reason, attempt, restarts, " \
                 "recoveries, exit_code, started_us, ended_us, restart_count, restart_due_us, " \
                 "free_restarts"
#define GROUP_WHERE_USER "(?2 IS NULL OR user = ?2)"

/* Filter parameters of ST_GROUP_FILTERED and of the built listings
 * (list_sql): ?1 group id, ?2 user, ?3 active only, ?4 ended after; the
 * listings also take ?5 "ids above" and ?6 a row limit (-1: none), which page
 * a long queue, ?7 the states, ?8 and ?9 the name (or the bounds of a
 * prefix).  @ACTIVE@ becomes the quoted names of the non-terminal states,
 * computed from state.h at open. */
static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT jg_op",
    [ST_RELEASE] = "RELEASE jg_op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO jg_op",
    [ST_INSERT_GROUP] =
        "INSERT INTO groups (name, user, uid, gid, state, reason, spec_json, submitted_us) "
        "VALUES (?1, ?2, ?3, ?4, 'PENDING', ?5, ?6, ?7)",
    [ST_INSERT_JOB] =
        "INSERT INTO jobs (group_id, idx, name, num_nodes, state) VALUES (?1, ?2, ?3, ?4, 'PENDING')",
    [ST_INSERT_NODE] =
        "INSERT INTO nodes (group_id, job_idx, rank, state, hostname) "
        "VALUES (?1, ?2, ?3, 'PENDING', ?4)",
    [ST_INSERT_EVENT] =
        "INSERT INTO events (group_id, ts_us, subject, what, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
    /* ?3 state, ?4 reason, ?5 now, ?6 is the state terminal */
    [ST_SET_GROUP_STATE] =
        "UPDATE groups SET state = ?3, reason = ?4,"
        " started_us = CASE WHEN ?3 = 'STARTING' AND started_us = 0 THEN ?5 ELSE started_us END,"
        " ended_us = CASE WHEN ?6 THEN ?5 ELSE 0 END "
        "WHERE id = ?1",
    [ST_SET_GROUP_INFRA] = "UPDATE groups SET infra = ?2 WHERE id = ?1",
    [ST_SET_JOB_STATE] =
        "UPDATE jobs SET state = ?3, reason = ?4,"
        " started_us = CASE WHEN ?3 = 'STARTING' AND started_us = 0 THEN ?5 ELSE started_us END,"
        " ended_us = CASE WHEN ?6 THEN ?5 ELSE 0 END "
        "WHERE group_id = ?1 AND idx = ?2",
    [ST_JOB_EVENT] =
        "INSERT INTO events (group_id, ts_us, subject, what, reason) "
        "SELECT ?1, ?3, 'job ' || name, ?4, ?5 FROM jobs WHERE group_id = ?1 AND idx = ?2",
    [ST_JOB_NEW_ATTEMPT] =
        "UPDATE jobs SET attempt = attempt + 1, restarts = restarts + (?3 = 1),"
        " recoveries = recoveries + (?3 = 2), free_restarts = free_restarts + (?3 = 0),"
        " restart_count = -1, restart_due_us = 0 "
        "WHERE group_id = ?1 AND idx = ?2",
    [ST_JOB_ATTEMPT_EVENT] =
        "INSERT INTO events (group_id, ts_us, subject, what, reason) "
        "SELECT ?1, ?3, 'job ' || name, ?4, 'attempt ' || attempt FROM jobs "
        "WHERE group_id = ?1 AND idx = ?2",
    [ST_SET_JOB_EXIT] = "UPDATE jobs SET exit_code = ?3 WHERE group_id = ?1 AND idx = ?2",
    [ST_PUT_JOB] = "UPDATE jobs SET state = ?3, reason = ?4, attempt = ?5, restarts = ?6,"
                   " recoveries = ?7, free_restarts = ?8, exit_code = ?9, restart_count = ?10,"
                   " restart_due_us = ?11 WHERE group_id = ?1 AND idx = ?2",
    [ST_SET_JOB_RESTART] = "UPDATE jobs SET restart_count = ?3, restart_due_us = ?4 "
                           "WHERE group_id = ?1 AND idx = ?2",
    [ST_SET_NODE_STATE] =
        "UPDATE nodes SET state = ?4, attempt = ?5, exit_code = ?6 "
        "WHERE group_id = ?1 AND job_idx = ?2 AND rank = ?3",
    [ST_NODE_EVENT] =
        "INSERT INTO events (group_id, ts_us, subject, what, reason) "
        "SELECT ?1, ?4, 'node ' || name || '-' || ?3, ?5, ?6 FROM jobs "
        "WHERE group_id = ?1 AND idx = ?2",
    [ST_SET_NODE_HANDLE] =
        "UPDATE nodes SET handle = ?4, address = ?5 "
        "WHERE group_id = ?1 AND job_idx = ?2 AND rank = ?3",
    [ST_GET_GROUP] = "SELECT " GROUP_COLS " FROM groups WHERE id = ?1",
    [ST_GROUP_FILTERED] =
        "SELECT " GROUP_COLS " FROM groups WHERE id = ?1 AND " GROUP_WHERE_USER
        " AND (state IN (@ACTIVE@) OR (?3 = 0 AND (?4 = 0 OR ended_us > ?4)))",
    [ST_JOBS_OF_GROUP] = "SELECT " JOB_COLS " FROM jobs WHERE group_id = ?1 ORDER BY idx",
    [ST_JOBS_ALL] = "SELECT " JOB_COLS " FROM jobs ORDER BY group_id, idx",
    [ST_JOBS_OF_GROUPS] = "SELECT " JOB_COLS " FROM jobs "
                          "WHERE group_id IN (SELECT value FROM json_each(?1)) "
                          "ORDER BY group_id, idx",
    [ST_NODES] =
        "SELECT group_id, job_idx, rank, state, attempt, exit_code, hostname, address, handle "
        "FROM nodes WHERE group_id = ?1 ORDER BY job_idx, rank",
    [ST_EVENTS] =
        "SELECT id, group_id, ts_us, subject, what, reason FROM events "
        "WHERE group_id = ?1 ORDER BY id",
    [ST_INSERT_VOLUME] =
        "INSERT INTO volumes (name, path, uid, user, created_us) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_GET_VOLUME] = "SELECT name, path, uid, user, created_us FROM volumes WHERE name = ?1",
    [ST_VOLUMES] = "SELECT name, path, uid, user, created_us FROM volumes ORDER BY name",
    [ST_DELETE_VOLUME] = "DELETE FROM volumes WHERE name = ?1",
    [ST_SET_POLICY_TEXT] = "UPDATE groups SET policy_text = ?2 WHERE id = ?1",
    [ST_GET_POLICY_TEXT] = "SELECT policy_text FROM groups WHERE id = ?1",
};

/* "'PENDING','STARTING',...": the states a group can still leave. */
static char *active_states_sql(void)
{
    char *list = jg_xstrdup("");
    for (int i = 0; i < JG_STATE_COUNT; i++) {
        if (jg_state_is_terminal((jg_state_t)i))
            continue;
        char *next = jg_xasprintf("%s%s'%s'", list, *list ? "," : "", jg_state_name(i));
        free(list);
        list = next;
    }
    return list;
}

/* Returns a malloc'd copy of sql with every @ACTIVE@ replaced by active. */
static char *expand_sql(const char *sql, const char *active)
{
    static const char token[] = "@ACTIVE@";
    char *out = jg_xstrdup(sql);
    char *at;
    while ((at = strstr(out, token)) != NULL) {
        char *next = jg_xasprintf("%.*s%s%s", (int)(at - out), out, active,
                                  at + sizeof token - 1);
        free(out);
        out = next;
    }
    return out;
}

static int prepare_all(jg_store_t *s, jg_error_t *err)
{
    char *active = active_states_sql();
    s->active_sql = jg_xstrdup(active);
    int rc = 0;
    for (int i = 0; i < ST_COUNT && rc == 0; i++) {
        char *sql = expand_sql(stmt_sql[i], active);
        if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
            SQLITE_OK)
            rc = db_err(s, err, "cannot prepare a statement");
        free(sql);
    }
    free(active);
    return rc;
}

/* Binding helpers.  Text is bound SQLITE_STATIC: every use ends in reset_stmt()
 * before the caller's strings can go away. */
static sqlite3_stmt *use(jg_store_t *s, enum stmt_id id)
{
    return s->st[id];
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC);
}

static void reset_stmt(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows, then resets it.  The error is
 * formatted before the reset so it names the failing statement's error. */
static int run(jg_store_t *s, sqlite3_stmt *st, const char *what, jg_error_t *err)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        db_err(s, err, what);
    reset_stmt(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* ---- 4. transactions ----------------------------------------------------- */

int jg_store_begin(jg_store_t *s, jg_error_t *err)
{
    if (s->depth > 0)
        return jg_errprintf(err, "%s: a transaction is already open", s->path);
    if (run(s, use(s, ST_BEGIN), "cannot begin a transaction", err) < 0)
        return -1;
    s->depth = 1;
    return 0;
}

int jg_store_commit(jg_store_t *s, jg_error_t *err)
{
    if (s->depth == 0)
        return jg_errprintf(err, "%s: commit without a transaction", s->path);
    s->depth = 0;
    if (run(s, use(s, ST_COMMIT), "cannot commit", err) < 0) {
        if (!sqlite3_get_autocommit(s->db))
            run(s, use(s, ST_ROLLBACK), "rollback", NULL);
        return -1;
    }
    return 0;
}

void jg_store_rollback(jg_store_t *s)
{
    if (!s || s->depth == 0)
        return;
    s->depth = 0;
    if (!sqlite3_get_autocommit(s->db))
        run(s, use(s, ST_ROLLBACK), "rollback", NULL);
}

/* Every setter runs between op_begin and op_end: a transaction of its own
 * outside jg_store_begin, a savepoint inside it. */
static int op_begin(jg_store_t *s, jg_error_t *err)
{
    /* SQLite rolls a whole transaction back on some errors (SQLITE_FULL,
     * SQLITE_IOERR): a setter must not then commit on its own, half of what
     * the caller meant to land together. */
    if (s->depth > 0 && sqlite3_get_autocommit(s->db))
        return jg_errprintf(err, "%s: the transaction was rolled back after an earlier error",
                            s->path);
    if (s->depth > 0)
        return run(s, use(s, ST_SAVEPOINT), "cannot open a savepoint", err);
    return run(s, use(s, ST_BEGIN), "cannot begin a transaction", err);
}

/* Ends what op_begin opened: keeps the work if rc is 0, undoes it otherwise.
 * Returns rc, or -1 if keeping failed. */
static int op_end(jg_store_t *s, int rc, jg_error_t *err)
{
    if (s->depth > 0) {
        if (rc == 0)
            return run(s, use(s, ST_RELEASE), "cannot release a savepoint", err);
        run(s, use(s, ST_ROLLBACK_TO), "rollback to savepoint", NULL);
        run(s, use(s, ST_RELEASE), "release savepoint", NULL);
        return -1;
    }
    if (rc == 0 && run(s, use(s, ST_COMMIT), "cannot commit", err) == 0)
        return 0;
    if (!sqlite3_get_autocommit(s->db))
        run(s, use(s, ST_ROLLBACK), "rollback", NULL);
    return -1;
}

/* ---- 5. setters ---------------------------------------------------------- */

/* Runs an UPDATE that must touch exactly one row; "no X" otherwise. */
static int update_one(jg_store_t *s, sqlite3_stmt *st, const char *what, const char *missing,
                      jg_error_t *err)
{
    if (run(s, st, what, err) < 0)
        return -1;
    if (sqlite3_changes(s->db) != 1)
        return jg_errprintf(err, "%s", missing);
    return 0;
}

static int insert_event(jg_store_t *s, int64_t group_id, const char *subject, const char *what,
                        const char *reason, int64_t now_us, jg_error_t *err)
{
    sqlite3_stmt *st = use(s, ST_INSERT_EVENT);
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int64(st, 2, now_us);
    bind_text(st, 3, subject);
    bind_text(st, 4, what);
    bind_text(st, 5, reason);
    if (sqlite3_step(st) == SQLITE_DONE) {
        reset_stmt(st);
        return 0;
    }
    if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
        jg_errprintf(err, "no group %lld", (long long)group_id);
    else
        db_err(s, err, "cannot add an event");
    reset_stmt(st);
    return -1;
}

static int insert_job_and_nodes(jg_store_t *s, int64_t gid, const jg_group_spec_t *spec,
                                int index, jg_error_t *err)
{
    const jg_job_spec_t *job = &spec->jobs[index];
    sqlite3_stmt *st = use(s, ST_INSERT_JOB);
    sqlite3_bind_int64(st, 1, gid);
    sqlite3_bind_int(st, 2, index);
    bind_text(st, 3, job->name);
    sqlite3_bind_int(st, 4, job->num_nodes);
    if (run(s, st, "cannot add a job", err) < 0)
        return -1;
    st = use(s, ST_INSERT_NODE);
    for (int rank = 0; rank < job->num_nodes; rank++) {
        char *host = jg_xasprintf("%s-%d.%s", job->name, rank, spec->name);
        sqlite3_bind_int64(st, 1, gid);
        sqlite3_bind_int(st, 2, index);
        sqlite3_bind_int(st, 3, rank);
        bind_text(st, 4, host);
        int rc = run(s, st, "cannot add a node", err);
        free(host);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int jg_store_add_group(jg_store_t *s, const jg_group_spec_t *spec, const char *spec_json,
                       uid_t uid, gid_t gid, const char *user, int64_t now_us,
                       int64_t *group_id, jg_error_t *err)
{
    if (!spec || !spec->name)
        return jg_errprintf(err, "cannot add a group without a name");
    for (size_t i = 0; i < spec->n_jobs; i++) {
        if (!spec->jobs[i].name)
            return jg_errprintf(err, "cannot add group %s: job %zu has no name", spec->name, i);
    }
    int64_t id = 0;
    int rc = -1;
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_INSERT_GROUP);
    bind_text(st, 1, spec->name);
    bind_text(st, 2, user);
    sqlite3_bind_int64(st, 3, (int64_t)uid);
    sqlite3_bind_int64(st, 4, (int64_t)gid);
    bind_text(st, 5, "submitted");
    bind_text(st, 6, spec_json);
    sqlite3_bind_int64(st, 7, now_us);
    if (run(s, st, "cannot add the group", err) < 0)
        goto done;
    id = sqlite3_last_insert_rowid(s->db);
    for (size_t i = 0; i < spec->n_jobs; i++) {
        if (insert_job_and_nodes(s, id, spec, (int)i, err) < 0)
            goto done;
    }
    if (insert_event(s, id, "group", jg_state_name(JG_PENDING), "submitted", now_us, err) < 0)
        goto done;
    rc = 0;
done:
    rc = op_end(s, rc, err);
    if (rc == 0)
        *group_id = id;
    return rc;
}

/* Shared by the group and job state setters: ?3 state, ?4 reason, ?5 now,
 * ?6 terminal. */
static void bind_state(sqlite3_stmt *st, jg_state_t state, const char *reason, int64_t now_us)
{
    bind_text(st, 3, jg_state_name(state));
    bind_text(st, 4, reason);
    sqlite3_bind_int64(st, 5, now_us);
    sqlite3_bind_int(st, 6, jg_state_is_terminal(state));
}

int jg_store_set_group_state(jg_store_t *s, int64_t group_id, jg_state_t state,
                             const char *reason, int64_t now_us, jg_error_t *err)
{
    char missing[64];
    snprintf(missing, sizeof missing, "no group %lld", (long long)group_id);
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_SET_GROUP_STATE);
    sqlite3_bind_int64(st, 1, group_id);
    bind_state(st, state, reason, now_us);
    int rc = update_one(s, st, "cannot set the group state", missing, err);
    if (rc == 0)
        rc = insert_event(s, group_id, "group", jg_state_name(state), reason, now_us, err);
    return op_end(s, rc, err);
}

int jg_store_set_group_infra(jg_store_t *s, int64_t group_id, const char *infra,
                             jg_error_t *err)
{
    char missing[64];
    snprintf(missing, sizeof missing, "no group %lld", (long long)group_id);
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_SET_GROUP_INFRA);
    sqlite3_bind_int64(st, 1, group_id);
    bind_text(st, 2, infra);
    return op_end(s, update_one(s, st, "cannot set the group infra", missing, err), err);
}

/* Appends the event of a job (subject "job <name>" read from the row). */
static int job_event(jg_store_t *s, enum stmt_id id, int64_t group_id, int job_index,
                     const char *what, const char *reason, int64_t now_us, jg_error_t *err)
{
    sqlite3_stmt *st = use(s, id);
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int(st, 2, job_index);
    sqlite3_bind_int64(st, 3, now_us);
    bind_text(st, 4, what);
    if (id == ST_JOB_EVENT)
        bind_text(st, 5, reason);
    return update_one(s, st, "cannot add a job event", "job vanished", err);
}

static void job_missing(char *buf, size_t size, int64_t group_id, int job_index)
{
    snprintf(buf, size, "no job %d in group %lld", job_index, (long long)group_id);
}

int jg_store_set_job_state(jg_store_t *s, int64_t group_id, int job_index, jg_state_t state,
                           const char *reason, int64_t now_us, jg_error_t *err)
{
    char missing[80];
    job_missing(missing, sizeof missing, group_id, job_index);
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_SET_JOB_STATE);
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int(st, 2, job_index);
    bind_state(st, state, reason, now_us);
    int rc = update_one(s, st, "cannot set the job state", missing, err);
    if (rc == 0)
        rc = job_event(s, ST_JOB_EVENT, group_id, job_index, jg_state_name(state), reason,
                       now_us, err);
    return op_end(s, rc, err);
}

int jg_store_job_new_attempt(jg_store_t *s, int64_t group_id, int job_index,
                             jg_attempt_count_t count, int64_t now_us, jg_error_t *err)
{
    char missing[80];
    job_missing(missing, sizeof missing, group_id, job_index);
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_JOB_NEW_ATTEMPT);
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int(st, 2, job_index);
    sqlite3_bind_int(st, 3, (int)count);
    int rc = update_one(s, st, "cannot record a new attempt", missing, err);
    if (rc == 0)
        rc = job_event(s, ST_JOB_ATTEMPT_EVENT, group_id, job_index,
                       count == JG_COUNT_RECOVERY ? jg_state_name(JG_RECOVERING) : "attempt", NULL,
                       now_us, err);
    return op_end(s, rc, err);
}

int jg_store_set_job_exit(jg_store_t *s, int64_t group_id, int job_index, int exit_code,
                          jg_error_t *err)
{
    char missing[80];
    job_missing(missing, sizeof missing, group_id, job_index);
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_SET_JOB_EXIT);
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int(st, 2, job_index);
    sqlite3_bind_int(st, 3, exit_code);
    return op_end(s, update_one(s, st, "cannot set the job exit code", missing, err), err);
}

int jg_store_set_job_restart(jg_store_t *s, int64_t group_id, int job_index, int count,
                             int64_t due_us, jg_error_t *err)
{
    char missing[80];
    job_missing(missing, sizeof missing, group_id, job_index);
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_SET_JOB_RESTART);
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int(st, 2, job_index);
    sqlite3_bind_int(st, 3, count);
    sqlite3_bind_int64(st, 4, due_us);
    return op_end(s, update_one(s, st, "cannot record the pending restart", missing, err), err);
}

int jg_store_put_job(jg_store_t *s, const jg_job_row_t *row, jg_error_t *err)
{
    char missing[80];
    job_missing(missing, sizeof missing, row->group_id, row->index);
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_PUT_JOB);
    sqlite3_bind_int64(st, 1, row->group_id);
    sqlite3_bind_int(st, 2, row->index);
    bind_text(st, 3, jg_state_name(row->state));
    bind_text(st, 4, row->reason);
    sqlite3_bind_int(st, 5, row->attempt);
    sqlite3_bind_int(st, 6, row->restarts);
    sqlite3_bind_int(st, 7, row->recoveries);
    sqlite3_bind_int(st, 8, row->free_restarts);
    sqlite3_bind_int(st, 9, row->exit_code);
    sqlite3_bind_int(st, 10, row->restart_count);
    sqlite3_bind_int64(st, 11, row->restart_due_us);
    return op_end(s, update_one(s, st, "cannot rewrite the job", missing, err), err);
}

static void node_missing(char *buf, size_t size, int64_t group_id, int job_index, int rank)
{
    snprintf(buf, size, "no node %d of job %d in group %lld", rank, job_index,
             (long long)group_id);
}

int jg_store_set_node_state(jg_store_t *s, int64_t group_id, int job_index, int rank,
                            jg_state_t state, int attempt, int exit_code, const char *reason,
                            int64_t now_us, jg_error_t *err)
{
    char missing[96];
    node_missing(missing, sizeof missing, group_id, job_index, rank);
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_SET_NODE_STATE);
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int(st, 2, job_index);
    sqlite3_bind_int(st, 3, rank);
    bind_text(st, 4, jg_state_name(state));
    sqlite3_bind_int(st, 5, attempt);
    sqlite3_bind_int(st, 6, exit_code);
    int rc = update_one(s, st, "cannot set the node state", missing, err);
    if (rc == 0) {
        st = use(s, ST_NODE_EVENT);
        sqlite3_bind_int64(st, 1, group_id);
        sqlite3_bind_int(st, 2, job_index);
        sqlite3_bind_int(st, 3, rank);
        sqlite3_bind_int64(st, 4, now_us);
        bind_text(st, 5, jg_state_name(state));
        bind_text(st, 6, reason);
        rc = update_one(s, st, "cannot add a node event", missing, err);
    }
    return op_end(s, rc, err);
}

int jg_store_set_node_handle(jg_store_t *s, int64_t group_id, int job_index, int rank,
                             const char *handle, const char *address, jg_error_t *err)
{
    char missing[96];
    node_missing(missing, sizeof missing, group_id, job_index, rank);
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_SET_NODE_HANDLE);
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int(st, 2, job_index);
    sqlite3_bind_int(st, 3, rank);
    bind_text(st, 4, handle);
    bind_text(st, 5, address);
    return op_end(s, update_one(s, st, "cannot set the node handle", missing, err), err);
}

int jg_store_add_event(jg_store_t *s, int64_t group_id, const char *subject, const char *what,
                       const char *reason, int64_t now_us, jg_error_t *err)
{
    if (op_begin(s, err) < 0)
        return -1;
    return op_end(s, insert_event(s, group_id, subject, what, reason, now_us, err), err);
}

/* ---- 6. queries ---------------------------------------------------------- */

static char *col_str(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return jg_xstrdup(t ? (const char *)t : "");
}

static int col_state(jg_store_t *s, sqlite3_stmt *st, int col, jg_state_t *out,
                     jg_error_t *err)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    if (!t || jg_state_parse(t, out) < 0)
        return jg_errprintf(err, "%s: unknown state '%s' in the store", s->path,
                            t ? t : "(null)");
    return 0;
}

/* Row readers: the state is parsed first so a failure owns nothing yet. */
static int read_group(jg_store_t *s, sqlite3_stmt *st, void *out, jg_error_t *err)
{
    jg_group_row_t *r = out;
    memset(r, 0, sizeof *r);
    if (col_state(s, st, 5, &r->state, err) < 0)
        return -1;
    r->id = sqlite3_column_int64(st, 0);
    r->name = col_str(st, 1);
    r->user = col_str(st, 2);
    r->uid = (uid_t)sqlite3_column_int64(st, 3);
    r->gid = (gid_t)sqlite3_column_int64(st, 4);
    r->reason = col_str(st, 6);
    r->spec_json = col_str(st, 7);
    r->infra = col_str(st, 8);
    r->submitted_us = sqlite3_column_int64(st, 9);
    r->started_us = sqlite3_column_int64(st, 10);
    r->ended_us = sqlite3_column_int64(st, 11);
    return 0;
}

static int read_job(jg_store_t *s, sqlite3_stmt *st, void *out, jg_error_t *err)
{
    jg_job_row_t *r = out;
    memset(r, 0, sizeof *r);
    if (col_state(s, st, 4, &r->state, err) < 0)
        return -1;
    r->group_id = sqlite3_column_int64(st, 0);
    r->index = sqlite3_column_int(st, 1);
    r->name = col_str(st, 2);
    r->num_nodes = sqlite3_column_int(st, 3);
    r->reason = col_str(st, 5);
    r->attempt = sqlite3_column_int(st, 6);
    r->restarts = sqlite3_column_int(st, 7);
    r->recoveries = sqlite3_column_int(st, 8);
    r->exit_code = sqlite3_column_int(st, 9);
    r->started_us = sqlite3_column_int64(st, 10);
    r->ended_us = sqlite3_column_int64(st, 11);
    r->restart_count = sqlite3_column_int(st, 12);
    r->restart_due_us = sqlite3_column_int64(st, 13);
    r->free_restarts = sqlite3_column_int(st, 14);
    return 0;
}

static int read_node(jg_store_t *s, sqlite3_stmt *st, void *out, jg_error_t *err)
{
    jg_node_row_t *r = out;
    memset(r, 0, sizeof *r);
    if (col_state(s, st, 3, &r->state, err) < 0)
        return -1;
    r->group_id = sqlite3_column_int64(st, 0);
    r->job_index = sqlite3_column_int(st, 1);
    r->rank = sqlite3_column_int(st, 2);
    r->attempt = sqlite3_column_int(st, 4);
    r->exit_code = sqlite3_column_int(st, 5);
    r->hostname = col_str(st, 6);
    r->address = col_str(st, 7);
    r->handle = col_str(st, 8);
    return 0;
}

static int read_event(jg_store_t *s, sqlite3_stmt *st, void *out, jg_error_t *err)
{
    (void)s;
    (void)err;
    jg_event_row_t *r = out;
    r->id = sqlite3_column_int64(st, 0);
    r->group_id = sqlite3_column_int64(st, 1);
    r->ts_us = sqlite3_column_int64(st, 2);
    r->subject = col_str(st, 3);
    r->what = col_str(st, 4);
    r->reason = col_str(st, 5);
    return 0;
}

typedef int (*read_row_f)(jg_store_t *s, sqlite3_stmt *st, void *out, jg_error_t *err);
typedef void (*free_rows_f)(void *rows, size_t n);

/* Steps a bound query to the end, collecting rows of elem bytes each into a
 * malloc'd array.  On failure nothing is returned and the statement is reset. */
static int collect(jg_store_t *s, sqlite3_stmt *st, size_t elem, read_row_f read,
                   free_rows_f free_rows, void **out, size_t *n, jg_error_t *err)
{
    char *rows = NULL;
    size_t count = 0, cap = 0;
    int rc = -1, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            rows = jg_xrealloc(rows, cap * elem);
        }
        if (read(s, st, rows + count * elem, err) < 0)
            goto done;
        count++;
    }
    if (step != SQLITE_DONE) {
        db_err(s, err, "query failed");
        goto done;
    }
    rc = 0;
done:
    reset_stmt(st);
    if (rc < 0) {
        free_rows(rows, count);
        rows = NULL;
        count = 0;
    }
    *out = rows;
    *n = count;
    return rc;
}

int jg_store_set_group_policy_text(jg_store_t *s, int64_t group_id, const char *text,
                                   size_t len, jg_error_t *err)
{
    char missing[64];
    snprintf(missing, sizeof missing, "no group %lld", (long long)group_id);
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_SET_POLICY_TEXT);
    sqlite3_bind_int64(st, 1, group_id);
    if (text)
        sqlite3_bind_text(st, 2, text, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    int rc = update_one(s, st, "cannot store the group's policy", missing, err);
    return op_end(s, rc, err);
}

int jg_store_get_group_policy_text(jg_store_t *s, int64_t group_id, char **text, size_t *len,
                                   jg_error_t *err)
{
    *text = NULL;
    *len = 0;
    sqlite3_stmt *st = use(s, ST_GET_POLICY_TEXT);
    sqlite3_bind_int64(st, 1, group_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            *len = (size_t)sqlite3_column_bytes(st, 0);
            *text = jg_xstrndup(t ? t : "", *len);
        }
        reset_stmt(st);
        return 0;
    }
    if (rc == SQLITE_DONE)
        jg_errprintf(err, "no group %lld", (long long)group_id);
    else
        db_err(s, err, "cannot read the group's policy");
    reset_stmt(st);
    return -1;
}

static void free_groups_v(void *rows, size_t n) { jg_group_rows_free(rows, n); }
static void free_jobs_v(void *rows, size_t n) { jg_job_rows_free(rows, n); }
static void free_nodes_v(void *rows, size_t n) { jg_node_rows_free(rows, n); }
static void free_events_v(void *rows, size_t n) { jg_event_rows_free(rows, n); }

int jg_store_get_group(jg_store_t *s, int64_t group_id, jg_group_row_t *out, jg_error_t *err)
{
    sqlite3_stmt *st = use(s, ST_GET_GROUP);
    sqlite3_bind_int64(st, 1, group_id);
    void *rows;
    size_t n;
    if (collect(s, st, sizeof *out, read_group, free_groups_v, &rows, &n, err) < 0)
        return -1;
    if (n == 0) {
        free(rows);
        return jg_errprintf(err, "no group %lld", (long long)group_id);
    }
    *out = *(jg_group_row_t *)rows;
    free(rows);
    return 0;
}

/* The listing's SQL for one shape of filter.  Each shape names the index that
 * serves it, so that a page costs about its own rows however many groups are
 * stored: left to itself the planner may scan the whole table in id order to
 * save a sort, which is the wrong bet for the few active groups among 100k
 * finished ones, and the right one (no sort at all) for a set of states that
 * may hold most of the store. */
static char *list_sql(enum list_mode mode, bool user, int name, bool summary)
{
    const char *cols = summary ? "id, name, user, uid, gid, state, reason, '', infra, "
                                 "submitted_us, started_us, ended_us"
                               : GROUP_COLS;
    char conds[160];
    snprintf(conds, sizeof conds, "id > ?5%s%s", user ? " AND user = ?2" : "",
             name == NAME_EXACT    ? " AND name = ?8"
             : name == NAME_PREFIX ? " AND name >= ?8 AND name < ?9"
                                   : "");
    /* LIST_ALL: an exact name, else the user, else the rowid itself. */
    const char *all_index = name == NAME_EXACT ? "INDEXED BY groups_name"
                            : user             ? "INDEXED BY groups_user"
                                               : "NOT INDEXED";
    switch (mode) {
    case LIST_ALL:
        return jg_xasprintf("SELECT %s FROM groups %s WHERE %s ORDER BY id LIMIT ?6", cols,
                            all_index, conds);
    case LIST_ACTIVE:
        return jg_xasprintf("SELECT %s FROM groups INDEXED BY groups_state WHERE state IN "
                            "(@ACTIVE@) AND %s ORDER BY id LIMIT ?6", cols, conds);
    case LIST_RECENT:
        return jg_xasprintf("SELECT %s FROM groups INDEXED BY groups_state WHERE state IN "
                            "(@ACTIVE@) AND %s UNION ALL SELECT %s FROM groups INDEXED BY "
                            "groups_ended WHERE ended_us > ?4 AND state NOT IN (@ACTIVE@) AND "
                            "%s ORDER BY id LIMIT ?6", cols, conds, cols, conds);
    case LIST_STATE_ONE:
        return jg_xasprintf("SELECT %s FROM groups INDEXED BY groups_state WHERE state = ?7 "
                            "AND %s ORDER BY id LIMIT ?6", cols, conds);
    case LIST_STATES_ACTIVE:
        return jg_xasprintf("SELECT %s FROM groups INDEXED BY groups_state WHERE state IN "
                            "(SELECT value FROM json_each(?7)) AND %s ORDER BY id LIMIT ?6",
                            cols, conds);
    case LIST_STATES_SCAN:
    default:
        return jg_xasprintf("SELECT %s FROM groups %s WHERE state IN (SELECT value FROM "
                            "json_each(?7)) AND %s ORDER BY id LIMIT ?6", cols,
                            all_index, conds);
    }
}

/* The statement for a shape, prepared on first use and kept. */
static sqlite3_stmt *built_stmt(jg_store_t *s, sqlite3_stmt **slot, char *sql, jg_error_t *err)
{
    if (!*slot) {
        char *expanded = expand_sql(sql, s->active_sql);
        if (sqlite3_prepare_v3(s->db, expanded, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) !=
            SQLITE_OK) {
            db_err(s, err, "cannot prepare a listing");
            *slot = NULL;
        }
        free(expanded);
    }
    free(sql);
    return *slot;
}

static int name_kind(const char *name)
{
    if (!name)
        return NAME_ANY;
    size_t n = strlen(name);
    return n > 0 && name[n - 1] == '*' ? NAME_PREFIX : NAME_EXACT;
}

/* Binds ?8 (and ?9) for the name filter: "x" itself, or for "x*" the bounds
 * of the names starting with x ("x" <= name < "x\xff": no UTF-8 text holds
 * the byte 0xff, so every name with that prefix sorts below the bound).
 * *owned holds what the binding points to until the statement is reset. */
static void bind_name(sqlite3_stmt *st, const char *name, char **owned)
{
    *owned = NULL;
    int kind = name_kind(name);
    if (kind == NAME_EXACT)
        sqlite3_bind_text(st, 8, name, -1, SQLITE_STATIC);
    else if (kind == NAME_PREFIX) {
        size_t n = strlen(name) - 1;
        sqlite3_bind_text(st, 8, name, (int)n, SQLITE_STATIC);
        *owned = jg_xasprintf("%.*s\xff", (int)n, name);
        sqlite3_bind_text(st, 9, *owned, -1, SQLITE_STATIC);
    }
}

/* The states of a mask as a JSON array of names, and whether all of them
 * are non-terminal; *one is the single state's name when there is one. */
static char *states_json(uint32_t mask, bool *all_active, const char **one)
{
    char *list = jg_xstrdup("[");
    int count = 0;
    *all_active = true;
    *one = NULL;
    for (int i = 0; i < JG_STATE_COUNT; i++) {
        if (!(mask & (1u << i)))
            continue;
        char *next = jg_xasprintf("%s%s\"%s\"", list, count ? "," : "", jg_state_name(i));
        free(list);
        list = next;
        *one = jg_state_name(i);
        *all_active = *all_active && !jg_state_is_terminal((jg_state_t)i);
        count++;
    }
    char *out = jg_xasprintf("%s]", list);
    free(list);
    if (count != 1)
        *one = NULL;
    return out;
}

int jg_store_list_groups(jg_store_t *s, const jg_group_filter_t *filter, jg_group_row_t **out,
                         size_t *n, jg_error_t *err)
{
    jg_group_filter_t all = {0};
    const jg_group_filter_t *f = filter ? filter : &all;
    uint32_t states = f->states & ((1u << JG_STATE_COUNT) - 1);
    char *states_list = NULL, *name_bound = NULL;
    const char *one_state = NULL;
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (f->group_id != 0) {
        st = use(s, ST_GROUP_FILTERED);
    } else {
        enum list_mode mode = LIST_ALL;
        if (states) {
            bool all_active;
            states_list = states_json(states, &all_active, &one_state);
            mode = one_state ? LIST_STATE_ONE : all_active ? LIST_STATES_ACTIVE
                                                           : LIST_STATES_SCAN;
        } else if (f->active_only)
            mode = LIST_ACTIVE;
        else if (f->ended_after_us != 0)
            mode = LIST_RECENT;
        int name = name_kind(f->name);
        size_t shape = (((size_t)mode * 2 + (f->user != NULL)) * NAME_KINDS + (size_t)name) * 2 +
                       f->summary;
        st = built_stmt(s, &s->list_st[shape], list_sql(mode, f->user != NULL, name, f->summary),
                        err);
        if (!st) {
            free(states_list);
            return -1;
        }
        if (one_state)
            sqlite3_bind_text(st, 7, one_state, -1, SQLITE_STATIC);
        else if (states_list)
            sqlite3_bind_text(st, 7, states_list, -1, SQLITE_STATIC);
        bind_name(st, f->name, &name_bound);
    }
    /* Each statement uses a subset of ?1..?9: binding an unused one is harmless,
     * and one past the statement's last parameter fails without effect. */
    sqlite3_bind_int64(st, 1, f->group_id);
    if (f->user)
        sqlite3_bind_text(st, 2, f->user, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int(st, 3, f->active_only);
    sqlite3_bind_int64(st, 4, f->ended_after_us);
    sqlite3_bind_int64(st, 5, f->after_id);
    sqlite3_bind_int64(st, 6, f->limit ? (int64_t)f->limit : -1);
    void *rows;
    int rc = collect(s, st, sizeof **out, read_group, free_groups_v, &rows, n, err);
    free(states_list);      /* collect's reset cleared the bindings */
    free(name_bound);
    *out = rows;
    return rc;
}

int jg_store_count_ended(jg_store_t *s, const char *user, const char *name, int64_t before_us,
                         int64_t *count, jg_error_t *err)
{
    *count = 0;
    int kind = name_kind(name);
    size_t shape = (size_t)(user != NULL) * NAME_KINDS + (size_t)kind;
    char conds[128];
    snprintf(conds, sizeof conds, "%s%s", user ? " AND user = ?2" : "",
             kind == NAME_EXACT    ? " AND name = ?8"
             : kind == NAME_PREFIX ? " AND name >= ?8 AND name < ?9"
                                   : "");
    /* A terminal group, and only one, has ended_us > 0 (ST_SET_GROUP_STATE):
     * without other filters the count reads the ended index alone. */
    char *sql = jg_xasprintf("SELECT count(*) FROM groups %s WHERE ended_us > 0 AND "
                             "ended_us <= ?4%s",
                             user || kind == NAME_EXACT ? "" : "INDEXED BY groups_ended", conds);
    sqlite3_stmt *st = built_stmt(s, &s->count_st[shape], sql, err);
    if (!st)
        return -1;
    char *name_bound;
    if (user)
        sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, before_us);
    bind_name(st, name, &name_bound);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    else
        db_err(s, err, "cannot count the ended groups");
    reset_stmt(st);
    free(name_bound);
    return rc == SQLITE_ROW ? 0 : -1;
}

int jg_store_list_jobs(jg_store_t *s, int64_t group_id, jg_job_row_t **out, size_t *n,
                       jg_error_t *err)
{
    sqlite3_stmt *st = use(s, group_id ? ST_JOBS_OF_GROUP : ST_JOBS_ALL);
    if (group_id)
        sqlite3_bind_int64(st, 1, group_id);
    void *rows;
    int rc = collect(s, st, sizeof **out, read_job, free_jobs_v, &rows, n, err);
    *out = rows;
    return rc;
}

int jg_store_list_jobs_of(jg_store_t *s, const int64_t *group_ids, size_t n_ids,
                          jg_job_row_t **out, size_t *n, jg_error_t *err)
{
    /* The ids travel as one JSON array: a single prepared statement serves
     * any number of them. */
    size_t cap = 3 + n_ids * 21, len = 0;
    char *ids = jg_xmalloc(cap);
    ids[len++] = '[';
    for (size_t i = 0; i < n_ids; i++)
        len += (size_t)snprintf(ids + len, cap - len, "%s%lld", i ? "," : "",
                                (long long)group_ids[i]);
    snprintf(ids + len, cap - len, "]");
    sqlite3_stmt *st = use(s, ST_JOBS_OF_GROUPS);
    sqlite3_bind_text(st, 1, ids, -1, SQLITE_STATIC);
    void *rows;
    int rc = collect(s, st, sizeof **out, read_job, free_jobs_v, &rows, n, err);
    free(ids);      /* collect's reset cleared the binding */
    *out = rows;
    return rc;
}

int jg_store_list_nodes(jg_store_t *s, int64_t group_id, jg_node_row_t **out, size_t *n,
                        jg_error_t *err)
{
    sqlite3_stmt *st = use(s, ST_NODES);
    sqlite3_bind_int64(st, 1, group_id);
    void *rows;
    int rc = collect(s, st, sizeof **out, read_node, free_nodes_v, &rows, n, err);
    *out = rows;
    return rc;
}

int jg_store_list_events(jg_store_t *s, int64_t group_id, jg_event_row_t **out, size_t *n,
                         jg_error_t *err)
{
    sqlite3_stmt *st = use(s, ST_EVENTS);
    sqlite3_bind_int64(st, 1, group_id);
    void *rows;
    int rc = collect(s, st, sizeof **out, read_event, free_events_v, &rows, n, err);
    *out = rows;
    return rc;
}

/* ---- 7. row frees -------------------------------------------------------- */

void jg_group_row_clear(jg_group_row_t *row)
{
    if (!row)
        return;
    free(row->name);
    free(row->user);
    free(row->reason);
    free(row->spec_json);
    free(row->infra);
    memset(row, 0, sizeof *row);
}

void jg_group_rows_free(jg_group_row_t *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        jg_group_row_clear(&rows[i]);
    free(rows);
}

void jg_job_rows_free(jg_job_row_t *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].name);
        free(rows[i].reason);
    }
    free(rows);
}

void jg_node_rows_free(jg_node_row_t *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].hostname);
        free(rows[i].address);
        free(rows[i].handle);
    }
    free(rows);
}

void jg_event_rows_free(jg_event_row_t *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].subject);
        free(rows[i].what);
        free(rows[i].reason);
    }
    free(rows);
}

/* ---- 7. volumes ----------------------------------------------------------- */

int jg_store_add_volume(jg_store_t *s, const char *name, const char *path, uid_t uid,
                        const char *user, int64_t now_us, jg_error_t *err)
{
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_INSERT_VOLUME);
    bind_text(st, 1, name);
    bind_text(st, 2, path);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)uid);
    bind_text(st, 4, user);
    sqlite3_bind_int64(st, 5, now_us);
    int rc = 0;
    if (sqlite3_step(st) != SQLITE_DONE) {
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
            rc = jg_errprintf(err, "volume %s already exists", name);
        else
            rc = db_err(s, err, "cannot add the volume");
    }
    reset_stmt(st);
    return op_end(s, rc, err);
}

static int read_volume(jg_store_t *s, sqlite3_stmt *st, void *out, jg_error_t *err)
{
    (void)s;
    (void)err;
    jg_volume_row_t *r = out;
    r->name = col_str(st, 0);
    r->path = col_str(st, 1);
    r->uid = (uid_t)sqlite3_column_int64(st, 2);
    r->user = col_str(st, 3);
    r->created_us = sqlite3_column_int64(st, 4);
    return 0;
}

static void free_volumes_v(void *rows, size_t n) { jg_volume_rows_free(rows, n); }

int jg_store_get_volume(jg_store_t *s, const char *name, jg_volume_row_t *out, jg_error_t *err)
{
    sqlite3_stmt *st = use(s, ST_GET_VOLUME);
    bind_text(st, 1, name);
    void *rows;
    size_t n;
    if (collect(s, st, sizeof *out, read_volume, free_volumes_v, &rows, &n, err) < 0)
        return -1;
    if (n == 0) {
        free(rows);
        return jg_errprintf(err, "no volume %s", name);
    }
    *out = *(jg_volume_row_t *)rows;
    free(rows);
    return 0;
}

int jg_store_list_volumes(jg_store_t *s, jg_volume_row_t **out, size_t *n, jg_error_t *err)
{
    void *rows;
    if (collect(s, use(s, ST_VOLUMES), sizeof **out, read_volume, free_volumes_v, &rows, n,
                err) < 0)
        return -1;
    *out = rows;
    return 0;
}

int jg_store_remove_volume(jg_store_t *s, const char *name, jg_error_t *err)
{
    if (op_begin(s, err) < 0)
        return -1;
    sqlite3_stmt *st = use(s, ST_DELETE_VOLUME);
    bind_text(st, 1, name);
    char missing[160];
    snprintf(missing, sizeof missing, "no volume %s", name);
    return op_end(s, update_one(s, st, "cannot remove the volume", missing, err), err);
}

void jg_volume_row_clear(jg_volume_row_t *row)
{
    if (!row)
        return;
    free(row->name);
    free(row->path);
    free(row->user);
    memset(row, 0, sizeof *row);
}

void jg_volume_rows_free(jg_volume_row_t *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        jg_volume_row_clear(&rows[i]);
    free(rows);
}
