/* Unit tests of the protocol framing (line splitting in linear time, the size
 * cap, decoding, a refusal's reason) and of the daemon log's escaping and rate
 * limiting (error.c), which guard what clients can make the daemon write. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jgsched/proto.h"

Test(proto, lines_are_split_across_arbitrary_chunks)
{
    jg_linebuf_t lb;
    jg_linebuf_init(&lb);
    int too_long;
    jg_linebuf_append(&lb, "{\"op\":", 6);
    cr_assert_null(jg_linebuf_next(&lb, &too_long));
    jg_linebuf_append(&lb, "\"ping\"}\n{\"a\":1}\n{\"b\"", 20);
    char *l1 = jg_linebuf_next(&lb, &too_long);
    char *l2 = jg_linebuf_next(&lb, &too_long);
    cr_assert_str_eq(l1, "{\"op\":\"ping\"}");
    cr_assert_str_eq(l2, "{\"a\":1}");
    cr_assert_null(jg_linebuf_next(&lb, &too_long));
    cr_assert_eq(too_long, 0);
    free(l1);
    free(l2);
    jg_linebuf_clear(&lb);
}

Test(proto, a_line_over_the_cap_is_flagged_not_buffered_forever)
{
    jg_linebuf_t lb;
    jg_linebuf_init(&lb);
    char *big = malloc(JG_PROTO_MAX_MESSAGE + 10);
    memset(big, 'x', JG_PROTO_MAX_MESSAGE + 10);
    jg_linebuf_append(&lb, big, JG_PROTO_MAX_MESSAGE + 10);
    int too_long;
    cr_assert_null(jg_linebuf_next(&lb, &too_long));
    cr_assert_eq(too_long, 1);
    free(big);
    jg_linebuf_clear(&lb);
}

Test(proto, decode_rejects_garbage_and_non_objects_with_a_reason)
{
    jg_error_t err;
    cr_assert_null(jg_proto_decode("{\"op\":", &err));
    cr_assert(strstr(err.text, "malformed JSON") != NULL, "%s", err.text);
    cr_assert_null(jg_proto_decode("[1,2]", &err));
    cr_assert(strstr(err.text, "object") != NULL);
    cr_assert_null(jg_proto_decode("{\"a\":1,\"a\":2}", &err), "duplicate keys are rejected");
    json_t *ok = jg_proto_decode("{\"op\":\"ping\"}", &err);
    cr_assert_not_null(ok);
    json_decref(ok);
}

Test(proto, send_and_recv_round_trip_over_a_socket_pair)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    jg_error_t err;
    json_t *msg = json_pack("{s:s, s:i, s:s}", "op", "submit", "n", 3, "text", "line1\nline2 \xc3\xa9");
    cr_assert_eq(jg_proto_send(sv[0], msg, &err), 0);
    cr_assert_eq(jg_proto_send(sv[0], msg, &err), 0);
    jg_linebuf_t lb;
    jg_linebuf_init(&lb);
    for (int i = 0; i < 2; i++) {
        json_t *got = jg_proto_recv(sv[1], &lb, &err);
        cr_assert_not_null(got, "%s", err.text);
        cr_assert(json_equal(got, msg));
        json_decref(got);
    }
    close(sv[0]);
    cr_assert_null(jg_proto_recv(sv[1], &lb, &err));
    cr_assert(strstr(err.text, "closed") != NULL);
    jg_linebuf_clear(&lb);
    close(sv[1]);
    json_decref(msg);
}

Test(proto, error_reply_carries_ok_false_and_the_message)
{
    json_t *e = jg_proto_error("no group %d", 12);
    cr_assert(json_is_false(json_object_get(e, "ok")));
    cr_assert_str_eq(json_string_value(json_object_get(e, "error")), "no group 12");
    json_decref(e);
}

/* ---- linear framing ---------------------------------------------------- */

/* Half a million pipelined requests in one buffer: consuming them must not
 * move the rest of the buffer for each one (that was quadratic: 19 s at -O2,
 * against milliseconds). */
Test(proto, many_pipelined_lines_are_split_in_linear_time, .timeout = 10)
{
    enum { LINES = 500000 };
    jg_linebuf_t lb;
    jg_linebuf_init(&lb);
    char *all = malloc(LINES * 2);
    for (size_t i = 0; i < LINES; i++) {
        all[2 * i] = 'x';
        all[2 * i + 1] = '\n';
    }
    jg_linebuf_append(&lb, all, LINES * 2);
    free(all);
    int too_long;
    size_t n = 0;
    char *line;
    while ((line = jg_linebuf_next(&lb, &too_long))) {
        cr_assert_str_eq(line, "x");
        free(line);
        n++;
    }
    cr_assert_eq(n, LINES);
    cr_assert_eq(jg_linebuf_pending(&lb), 0);
    jg_linebuf_clear(&lb);
}

/* Lines cut at every possible place and read in between appends come out
 * whole and in order, and pending() counts what is not returned yet. */
Test(proto, lines_survive_compaction_between_appends)
{
    const char *stream = "{\"op\":\"ping\"}\n{\"a\":12345}\n\n{\"b\":\"long line here\"}\nrest";
    size_t len = strlen(stream);
    for (size_t step = 1; step <= 9; step++) {
        jg_linebuf_t lb;
        jg_linebuf_init(&lb);
        const char *want[] = {"{\"op\":\"ping\"}", "{\"a\":12345}", "", "{\"b\":\"long line here\"}"};
        size_t got = 0, fed = 0, returned = 0;
        int too_long;
        while (fed < len) {
            size_t n = len - fed < step ? len - fed : step;
            jg_linebuf_append(&lb, stream + fed, n);
            fed += n;
            char *line;
            while ((line = jg_linebuf_next(&lb, &too_long))) {
                cr_assert_lt(got, 4);
                cr_assert_str_eq(line, want[got], "step %zu, line %zu", step, got);
                returned += strlen(line) + 1;
                got++;
                free(line);
            }
            cr_assert_eq(jg_linebuf_pending(&lb), fed - returned);
        }
        cr_assert_eq(got, 4);
        cr_assert_eq(jg_linebuf_pending(&lb), 4, "'rest' is pending");
        jg_linebuf_clear(&lb);
    }
}

Test(proto, an_oversize_line_after_consumed_ones_is_still_flagged)
{
    jg_linebuf_t lb;
    jg_linebuf_init(&lb);
    jg_linebuf_append(&lb, "{}\n", 3);
    int too_long;
    char *first = jg_linebuf_next(&lb, &too_long);
    cr_assert_str_eq(first, "{}");
    free(first);
    char *big = malloc(JG_PROTO_MAX_MESSAGE / 2);
    memset(big, 'y', JG_PROTO_MAX_MESSAGE / 2);
    for (int i = 0; i < 3; i++) {
        jg_linebuf_append(&lb, big, JG_PROTO_MAX_MESSAGE / 2);
        cr_assert_null(jg_linebuf_next(&lb, &too_long));
    }
    cr_assert_eq(too_long, 1);
    free(big);
    jg_linebuf_clear(&lb);
}

/* A daemon that refuses a connection answers one error line and closes:
 * the client's send then reports that text, not "broken pipe". */
Test(proto, send_to_a_refusing_daemon_reports_its_reason)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    const char *no = "{\"ok\":false,\"error\":\"too many connections: user x has 64\"}\n";
    cr_assert_eq(write(sv[1], no, strlen(no)), (ssize_t)strlen(no));
    close(sv[1]);
    jg_error_t err;
    json_t *msg = json_pack("{s:s}", "op", "ping");
    cr_assert_eq(jg_proto_send(sv[0], msg, &err), -1);
    cr_assert_str_eq(err.text, "too many connections: user x has 64");
    json_decref(msg);
    close(sv[0]);
}

/* ---- the daemon log (error.c): user text cannot forge or garble lines ---- */

Test(proto, log_escape_keeps_user_text_on_one_printable_line)
{
    char out[256];
    const char in[] = "name\n2026-01-01T00:00:00.000Z error forged\r\tq\\ \x1b[31m"
                      "\x7f \xc2\x9b \xff caf\xc3\xa9 \xe2\x82\xac";
    jg_log_escape(out, sizeof out, in, sizeof in - 1);
    cr_assert_str_eq(out, "name\\n2026-01-01T00:00:00.000Z error forged\\r\tq\\ \\x1b[31m"
                          "\\x7f \\xc2\\x9b \\xff caf\xc3\xa9 \xe2\x82\xac");
    /* Escaping escaped text changes nothing. */
    char twice[256];
    jg_log_escape(twice, sizeof twice, out, strlen(out));
    cr_assert_str_eq(twice, out);
    /* Truncation never cuts an escape in half. */
    jg_log_escape(out, 6, "ab\ncd", 5);
    cr_assert_str_eq(out, "ab\\nc");
    jg_log_escape(out, 4, "ab\ncd", 5);
    cr_assert_str_eq(out, "ab");
    /* Overlong forms and surrogates are not UTF-8. */
    jg_log_escape(out, sizeof out, "\xc0\xaf\xed\xa0\x80", 5);
    cr_assert_str_eq(out, "\\xc0\\xaf\\xed\\xa0\\x80");
}

/* Runs fn with stderr sent to a file; returns what was written (caller frees). */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/jgtest_log_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)n + 1);
    cr_assert_eq(pread(fd, text, (size_t)n, 0), n);
    close(fd);
    return text;
}

static void log_user_text(void)
{
    jg_log("info", "policy %s: %s", "mine", "hello\n2026-01-01T00:00:00.000Z error forged");
}

Test(proto, log_lines_escape_what_they_quote)
{
    char *text = capture_stderr(log_user_text);
    cr_assert(strstr(text, " info policy mine: hello\\n2026-01-01T00:00:00.000Z error forged\n"),
              "%s", text);
    cr_assert_eq(strchr(text, '\n'), text + strlen(text) - 1, "one line: %s", text);
    free(text);
}

static void log_burst(void)
{
    jg_log_limit_t lim = {0};
    for (int i = 0; i < 5; i++)
        jg_log_limited(&lim, "warn", "refused %d", i);
    lim.next_ms = 1;        /* as if the interval had passed */
    jg_log_limited(&lim, "warn", "refused %d", 5);
}

Test(proto, a_log_limiter_passes_one_line_per_interval_and_counts_the_rest)
{
    char *text = capture_stderr(log_burst);
    cr_assert(strstr(text, " warn refused 0\n"), "%s", text);
    cr_assert_null(strstr(text, "refused 1"), "%s", text);
    cr_assert(strstr(text, " warn refused 5 (4 more like this since the last one, not logged)\n"),
              "%s", text);
    free(text);
}
