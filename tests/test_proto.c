/* Unit tests of the protocol framing: line splitting, the size cap, decoding. */
#include <criterion/criterion.h>
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
