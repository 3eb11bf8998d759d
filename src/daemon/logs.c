/* logs.c - `jgsched logs`: nodes' output read back into `logs` replies.
 *
 * A reply holds one chunk per node, each from the offset the client has
 * reached, never crossing into the next attempt (a chunk says which attempt
 * it belongs to, and for a restart the policy decision that caused it).  The
 * whole reply stays under the protocol's line limit; program output is
 * arbitrary bytes, so each chunk is cut on whole lines and characters and
 * made valid UTF-8 (docs/protocol.md, logs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon_int.h"

/* Replaces every byte that is not part of valid UTF-8 with '?', in place:
 * program output is arbitrary bytes, JSON strings are not.  Overlong forms,
 * surrogates and code points past U+10FFFF count as invalid, as jansson
 * refuses them too.  A sequence cut off by the end of buf becomes '?' as
 * well: read_log_chunk leaves out one that more output will complete. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
    if (p[0] < 0x80)
        return p[0] ? 1 : 0;
    size_t len = (p[0] >> 5) == 0x6 ? 2 : (p[0] >> 4) == 0xe ? 3 : (p[0] >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || len > avail)
        return 0;
    for (size_t k = 1; k < len; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    unsigned cp = len == 2 ? (p[0] & 0x1fu) << 6 | (p[1] & 0x3fu)
                : len == 3 ? (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu)
                           : (p[0] & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 |
                                 (p[3] & 0x3fu);
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

static void sanitize_utf8(char *buf, size_t n)
{
    unsigned char *p = (unsigned char *)buf;
    size_t i = 0;
    while (i < n) {
        size_t len = utf8_seq_len(p + i, n - i);
        if (len == 0) {
            p[i++] = '?';
            continue;
        }
        i += len;
    }
}

/* Bytes the UTF-8 sequence at p takes once jg_proto_encode escapes it
 * (JSON_ENSURE_ASCII): \uXXXX for control characters and for every code
 * point past ASCII, twice that past U+FFFF. */
static size_t escaped_size(const unsigned char *p, size_t len)
{
    if (len > 1)
        return len == 4 ? 12 : 6;
    if (p[0] == '"' || p[0] == '\\' || p[0] == '\b' || p[0] == '\f' || p[0] == '\n' ||
        p[0] == '\r' || p[0] == '\t')
        return 2;
    return p[0] < 0x20 ? 6 : 1;
}

/* The longest prefix of buf[0..n) (sanitized) whose escaped form fits in
 * budget bytes, ending on a character; cut after its last newline when it had
 * to be shortened and has one, so whole lines travel together. */
static size_t fit_escaped(const char *buf, size_t n, size_t budget)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t i = 0, used = 0, last_nl = 0;
    while (i < n) {
        size_t len = utf8_seq_len(p + i, n - i);
        if (len == 0)
            len = 1;
        size_t cost = escaped_size(p + i, len);
        if (used + cost > budget)
            return last_nl > 0 ? last_nl : i;
        used += cost;
        i += len;
        if (p[i - 1] == '\n')
            last_nl = i;
    }
    return n;
}

/* What one node's log reader needs to know of the node. */
typedef struct {
    const char *job;
    int rank;
    bool ended;                 /* the node is terminal: its log is complete */
    int64_t next_attempt_at;    /* where the next attempt starts (-1: none) */
} log_node_t;

/* Reads up to max bytes of a node's log from offset, never past the next
 * attempt's start, into a chunk (docs/protocol.md, logs) whose JSON fits in
 * *budget bytes (decreased by what it takes).  Only whole lines come, unless
 * the node ended, the piece ends its attempt, or one line is longer than what
 * fits (it then travels in pieces).  NULL + err when the log cannot be read;
 * NULL without err text when not even the chunk's frame fits. */
static json_t *read_log_chunk(jg_logstore_t *logs, int64_t id, const log_node_t *node,
                              long long offset, size_t max, size_t *budget, bool *at_end,
                              jg_error_t *err)
{
    err->text[0] = '\0';
    if (node->next_attempt_at >= 0 && node->next_attempt_at >= offset &&
        (size_t)(node->next_attempt_at - offset) < max)
        max = (size_t)(node->next_attempt_at - offset);
    int fd = jg_logstore_open_read(logs, id, node->job, node->rank, err);
    if (fd < 0)
        return NULL;
    char *buf = jg_xmalloc(max ? max : 1);
    ssize_t r = max ? pread(fd, buf, max, (off_t)offset) : 0;
    struct stat st;
    off_t size = fstat(fd, &st) == 0 ? st.st_size : 0;
    close(fd);
    if (r < 0) {
        free(buf);
        jg_errprintf(err, "cannot read the log of %s-%d: %s", node->job, node->rank,
                     strerror(errno));
        return NULL;
    }
    size_t n = (size_t)r;
    bool attempt_done = node->next_attempt_at >= 0 && offset + (long long)n >= node->next_attempt_at;
    if (!node->ended && !attempt_done && n > 0) {
        while (n > 0 && buf[n - 1] != '\n')
            n--;
        if (n == 0 && (size_t)r == max)
            n = (size_t)r;      /* one line longer than max: pass it on in pieces */
    }
    /* A character cut by max (more follows) waits for the next request. */
    if (n == (size_t)r && n == max && offset + (long long)n < (long long)size && !attempt_done) {
        for (size_t back = 1; back <= 3 && back <= n; back++) {
            unsigned char ch = (unsigned char)buf[n - back];
            if ((ch & 0xc0) == 0x80)
                continue;       /* a continuation byte: look further back */
            size_t want = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
            if (want > back && back < n)
                n -= back;
            break;
        }
    }
    sanitize_utf8(buf, n);

    char name[160];
    snprintf(name, sizeof name, "%s-%d", node->job, node->rank);
    json_t *chunk = json_pack("{s:s, s:s, s:i, s:I, s:s}", "node", name, "job", node->job, "rank",
                              node->rank, "offset", (json_int_t)offset, "data", "");
    size_t frame = json_dumpb(chunk, NULL, 0, JSON_COMPACT | JSON_ENSURE_ASCII) + 64;
    if (frame > *budget) {
        json_decref(chunk);
        free(buf);
        return NULL;
    }
    *budget -= frame;
    n = fit_escaped(buf, n, *budget);
    json_t *data = json_stringn(buf, n);
    free(buf);
    if (!data) {                /* cannot happen after sanitize_utf8; be safe */
        json_decref(chunk);
        jg_errprintf(err, "cannot encode the log of %s-%d", node->job, node->rank);
        return NULL;
    }
    size_t data_size = json_dumpb(data, NULL, 0, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    *budget = *budget > data_size ? *budget - data_size : 0;
    json_object_set_new(chunk, "data", data);
    json_object_set_new(chunk, "offset", json_integer((json_int_t)(offset + (long long)n)));
    *at_end = (off_t)(offset + (long long)n) >= size;
    return chunk;
}

/* "restart_job: <why>": the policy decision that started `attempt` of job,
 * from the group's events (the decision is recorded just before the job's
 * "attempt N" event); "" when none is recorded.  Caller frees. */
static char *attempt_reason(const jg_event_row_t *events, size_t n_events, const char *job,
                            int attempt)
{
    char subject[160], what[32];
    snprintf(subject, sizeof subject, "job %s", job);
    snprintf(what, sizeof what, "attempt %d", attempt);
    for (size_t i = n_events; i-- > 0;) {
        const jg_event_row_t *e = &events[i];
        if (strcmp(e->subject, subject) != 0 || strcmp(e->what, "attempt") != 0 || !e->reason ||
            strcmp(e->reason, what) != 0)
            continue;
        for (size_t k = i; k-- > 0;) {
            const jg_event_row_t *d = &events[k];
            static const char prefix[] = "on_node_exit: ";
            if (strcmp(d->subject, "policy") == 0 &&
                strncmp(d->what, prefix, sizeof prefix - 1) == 0)
                return jg_xasprintf("%s: %s", d->what + sizeof prefix - 1,
                                    d->reason ? d->reason : "");
        }
        break;
    }
    return jg_xstrdup("");
}

#define LOG_MAX_ATTEMPTS 256    /* attempt starts read per node */
#define LOG_REPLY_BUDGET (JG_PROTO_MAX_MESSAGE - 64 * 1024)   /* room for the reply's frame */

json_t *jgd_logs_reply(jg_daemon_t *d, const jg_group_row_t *row, const char *job,
                       int want_rank, json_t *offsets, size_t max)
{
    int64_t id = row->id;
    jg_error_t err;
    json_t *reply = NULL;
    jg_node_row_t *nodes = NULL;
    jg_job_row_t *jobs = NULL;
    jg_event_row_t *events = NULL;
    size_t n_nodes = 0, n_jobs = 0, n_events = 0;
    jg_log_attempt_t *attempts = jg_xcalloc(LOG_MAX_ATTEMPTS, sizeof *attempts);
    if (jg_store_list_jobs(d->store, id, &jobs, &n_jobs, &err) < 0 ||
        jg_store_list_nodes(d->store, id, &nodes, &n_nodes, &err) < 0) {
        reply = jg_proto_failure("%s", err.text);
        goto done;
    }
    if (job) {
        bool found = false;
        for (size_t i = 0; i < n_jobs; i++)
            found = found || strcmp(jobs[i].name, job) == 0;
        if (!found) {
            reply = jg_proto_error("group %lld has no job named %s", (long long)id, job);
            goto done;
        }
    }
    jg_logstore_t *logs = d->logs;
    bool group_ended = jg_state_is_terminal(row->state);
    bool all_at_end = true;
    size_t budget = LOG_REPLY_BUDGET;
    json_t *chunks = json_array();
    for (size_t i = 0; i < n_nodes; i++) {
        const jg_node_row_t *n = &nodes[i];
        if ((size_t)n->job_index >= n_jobs)
            continue;
        const char *jname = jobs[n->job_index].name;
        if ((job && strcmp(job, jname) != 0) || (want_rank >= 0 && n->rank != want_rank))
            continue;
        if (n->state == JG_PENDING && n->attempt <= 1)
            continue;       /* never launched: no log yet */
        char key[160];
        snprintf(key, sizeof key, "%s-%d", jname, n->rank);
        json_t *off = offsets ? json_object_get(offsets, key) : NULL;
        long long offset = off && json_is_integer(off) ? json_integer_value(off) : 0;
        if (offset < 0)
            offset = 0;
        /* The attempt the offset lies in, and where the next one starts. */
        size_t n_att = jg_logstore_attempts(logs, id, jname, n->rank, attempts, LOG_MAX_ATTEMPTS);
        int attempt = 1;
        log_node_t ln = {.job = jname, .rank = n->rank, .ended = jg_state_is_terminal(n->state),
                         .next_attempt_at = -1};
        for (size_t k = 0; k < n_att; k++) {
            if (attempts[k].offset <= offset) {
                attempt = attempts[k].attempt;
            } else {
                ln.next_attempt_at = attempts[k].offset;
                ln.ended = false;   /* an earlier attempt: its end is the next one's start */
                break;
            }
        }
        bool at_end = true;
        jg_error_t lerr;
        json_t *chunk = read_log_chunk(logs, id, &ln, offset, max, &budget, &at_end, &lerr);
        if (!chunk && !lerr.text[0]) {
            all_at_end = false;     /* no room left in this reply: the next one */
            break;
        }
        if (!chunk && errno == ENOENT)
            continue;       /* not created yet (launch in flight) */
        if (!chunk) {       /* there, but refused (a FIFO or link put there) or unreadable */
            json_decref(chunks);
            reply = jg_proto_error("%s", lerr.text);
            goto done;
        }
        json_object_set_new(chunk, "attempt", json_integer(attempt));
        if (attempt > 1) {
            if (!events && jg_store_list_events(d->store, id, &events, &n_events, &err) < 0)
                n_events = 0;
            char *why = attempt_reason(events, n_events, jname, attempt);
            json_object_set_new(chunk, "attempt_reason", json_string(why));
            free(why);
        }
        bool eof = ln.ended && ln.next_attempt_at < 0 && at_end;
        json_object_set_new(chunk, "eof", json_boolean(eof));
        if (eof) {
            json_object_set_new(chunk, "exit_code", json_integer(n->exit_code));
            json_object_set_new(chunk, "node_state", json_string(jg_state_name(n->state)));
        }
        all_at_end = all_at_end && at_end && ln.next_attempt_at < 0;
        json_array_append_new(chunks, chunk);
    }
    if (want_rank >= 0 && json_array_size(chunks) == 0 && group_ended && job) {
        json_decref(chunks);
        reply = jg_proto_error("job %s of group %lld has no node with rank %d", job, (long long)id,
                               want_rank);
        goto done;
    }
    reply = json_pack("{s:b, s:b, s:s, s:s, s:o}", "ok", 1, "done", group_ended && all_at_end,
                      "state", jg_state_name(row->state), "reason", row->reason ? row->reason : "",
                      "chunks", chunks);
done:
    free(attempts);
    jg_event_rows_free(events, n_events);
    jg_node_rows_free(nodes, n_nodes);
    jg_job_rows_free(jobs, n_jobs);
    return reply;
}
