/* Unit tests of the protocol framing (line splitting in linear time, the size
 * cap, decoding, a refusal's reason) and of the daemon log's escaping and rate
 * limiting (error.c), which guard what clients can make the daemon write. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>
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

/* ---- proto_json.c: the writer encodes as jansson does, the tokenizer is strict */

static char *jansson_text(json_t *v, size_t flags)
{
    char *s = json_dumps(v, flags | JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(v);
    return s;
}

static void assert_real_as_jansson(double v)
{
    jg_jsonw_t w = {0};
    jg_jsonw_real(&w, v);
    char *want = jansson_text(json_real(v), 0);
    cr_assert_str_eq(w.data, want, "%.17g", v);
    free(want);
    jg_jsonw_free(&w);
}

Test(proto_json, reals_are_written_exactly_as_jansson_writes_them)
{
    /* Timestamps (the queue's), whole numbers, halfway cases of the 17th
     * digit (1 + 1/2^17 has 18 significant digits, the last a 5), the ends
     * of the fast path, and values outside it. */
    srand(42);
    for (int i = 0; i < 200000; i++) {
        long long us = 1700000000000000LL + ((long long)rand() << 20 | rand()) % 200000000000000LL;
        assert_real_as_jansson((double)us / 1e6);
    }
    for (int i = 0; i < 100000; i++) {
        uint64_t bits = ((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 11) ^ (uint64_t)rand();
        double v;
        bits = (bits & ((1ULL << 52) - 1)) | ((uint64_t)(1023 + rand() % 53) << 52);
        memcpy(&v, &bits, sizeof v);
        assert_real_as_jansson(v);
    }
    for (int j = 1; j < 4096; j++)
        assert_real_as_jansson(1.0 + j / 131072.0);
    const double edges[] = {0.0, -0.0, 1.0, 0.5, 1e-7, 9.5, 99.99999999999999, 1e16,
                            9007199254740991.0, 9007199254740992.0, 1e300, -1795000000.25,
                            123456789012345680000.0, 2.5e-300};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        assert_real_as_jansson(edges[i]);
}

Test(proto_json, strings_and_integers_are_written_as_jansson_writes_them)
{
    const char *strings[] = {"", "plain", "q\"uote\\back/slash", "\b\f\n\r\t\x01\x1f\x7f",
                             "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 end"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        jg_jsonw_t w = {0};
        jg_jsonw_str(&w, strings[i]);
        char *want = jansson_text(json_string(strings[i]), JSON_ENSURE_ASCII);
        cr_assert_str_eq(w.data, want);
        free(want);
        jg_jsonw_free(&w);
    }
    const long long ints[] = {0, -1, 42, LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        jg_jsonw_t w = {0};
        jg_jsonw_int(&w, ints[i]);
        char *want = jansson_text(json_integer(ints[i]), 0);
        cr_assert_str_eq(w.data, want);
        free(want);
        jg_jsonw_free(&w);
    }
}

Test(proto_json, invalid_utf8_is_written_as_the_replacement_character)
{
    jg_jsonw_t w = {0};
    /* a lone continuation byte, an overlong '/', a surrogate, a cut sequence */
    jg_jsonw_str(&w, "a\x80" "b\xc0\xaf" "c\xed\xa0\x80" "d\xe2\x82");
    cr_assert_str_eq(w.data, "\"a\\uFFFDb\\uFFFD\\uFFFDc\\uFFFD\\uFFFD\\uFFFDd\\uFFFD\\uFFFD\"");
    json_t *back = json_loads(w.data, JSON_DECODE_ANY, NULL);
    cr_assert_not_null(back, "the text is valid JSON");
    json_decref(back);
    jg_jsonw_free(&w);
}

Test(proto_json, tokens_read_back_what_was_written)
{
    jg_jsonw_t w = {0};
    jg_jsonw_lit(&w, "{\"name\":");
    jg_jsonw_str(&w, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\"\n");
    jg_jsonw_lit(&w, ",\"list\":[1,-2.5e3,true,false,null,{},[]],\"when\":");
    jg_jsonw_time(&w, 1795000000123456LL);
    jg_jsonw_lit(&w, ",\"n\":");
    jg_jsonw_int(&w, -7);
    jg_jsonw_lit(&w, "}");
    char *text = strdup(w.data);
    jg_jtoks_t toks = {0};
    jg_error_t err;
    cr_assert_eq(jg_json_tokenize(text, strlen(text), &toks, &err), 0, "%s", err.text);
    cr_assert_eq(toks.tok[0].type, JG_JTOK_OBJECT);
    cr_assert_eq(toks.tok[0].count, 4);
    cr_assert_eq(toks.tok[0].next, toks.n);
    cr_assert_str_eq(jg_json_str(&toks, jg_json_get(&toks, 0, "name")),
                     "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\"\n");
    size_t list = jg_json_get(&toks, 0, "list");
    cr_assert_eq(toks.tok[list].type, JG_JTOK_ARRAY);
    cr_assert_eq(toks.tok[list].count, 7);
    cr_assert_eq(jg_json_int(&toks, list + 1, 0), 1);
    cr_assert(toks.tok[list + 2].is_real);
    cr_assert_eq(jg_json_num(&toks, list + 2), -2500.0);
    cr_assert(jg_json_true(&toks, list + 3));
    cr_assert_eq(toks.tok[list + 6].type, JG_JTOK_OBJECT);
    cr_assert_eq(toks.tok[list + 6].next, list + 7);
    cr_assert_eq(jg_json_num(&toks, jg_json_get(&toks, 0, "when")), 1795000000123456LL / 1e6);
    cr_assert_eq(jg_json_int(&toks, jg_json_get(&toks, 0, "n"), 0), -7);
    cr_assert_eq(jg_json_get(&toks, 0, "missing"), 0);
    cr_assert_str_eq(jg_json_str(&toks, 0), "");
    cr_assert_eq(jg_json_int(&toks, jg_json_get(&toks, 0, "name"), 9), 9, "a string is no int");
    free(text);
    jg_jtoks_free(&toks);
    jg_jsonw_free(&w);
}

Test(proto_json, the_tokenizer_refuses_what_is_not_strict_json)
{
    const char *bad[] = {"", "{", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "{1:2}", "[01]", "[1.]",
                         "[-]", "[1e]", "[tru]", "[\"a\\x\"]", "[\"\\u12\"]", "[\"\\ud800\"]",
                         "[\"\\udc00\"]", "[\"\\u0000\"]", "[\"a\x01\"]", "[\"\xc3\"]",
                         "[\"\xc0\xaf\"]", "{} {}", "[1] x", "[\"open", "[}", "{]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *text = strdup(bad[i]);
        jg_jtoks_t toks = {0};
        jg_error_t err;
        cr_assert_eq(jg_json_tokenize(text, strlen(text), &toks, &err), -1, "accepted '%s'",
                     bad[i]);
        cr_assert(strstr(err.text, "malformed JSON"), "%s", err.text);
        free(text);
        jg_jtoks_free(&toks);
    }
}

Test(proto_json, nesting_is_bounded)
{
    char deep[2 * (JG_JSON_MAX_DEPTH + 1) + 1];
    jg_jtoks_t toks = {0};
    jg_error_t err;
    for (int depth = JG_JSON_MAX_DEPTH; depth <= JG_JSON_MAX_DEPTH + 1; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        deep[2 * depth] = '\0';
        int rc = jg_json_tokenize(deep, strlen(deep), &toks, &err);
        cr_assert_eq(rc, depth <= JG_JSON_MAX_DEPTH ? 0 : -1, "depth %d", depth);
    }
    cr_assert(strstr(err.text, "nested too deep"), "%s", err.text);
    jg_jtoks_free(&toks);
}
