/* fuzz_proto.c - libFuzzer harness for what jgschedd does with a client's
 * bytes before a request handler runs.
 *
 * The daemon appends whatever recv() returned to the connection's
 * jg_linebuf_t, takes complete lines out, decodes each with jg_proto_decode,
 * reads the string field "op", and for `submit` parses the "yaml" field with
 * jg_spec_parse (named by the request's "file") and applies the request's
 * "name" and "infra" with jg_spec_set_name / jg_spec_set_infra; a volume
 * name is checked with jg_spec_is_dns_label.  The request handlers themselves
 * are static in daemon.c and act on the store and the backends (a valid
 * submit launches processes), so they are left to the integration tests;
 * the side-effect-free steps they take on a client's input are here.
 *
 * Checks beyond "no crash, no leak, no UB":
 *  - framing does not depend on how the stream is cut: the whole input in
 *    one append and the same input in small pieces (sizes taken from the
 *    input) give the same lines, and those are exactly the '\n'-separated
 *    pieces of the input;
 *  - every decoded request re-encodes (as a reply would be) to a single line
 *    ending in '\n' that decodes to an equal object.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jgsched/proto.h"
#include "jgsched/spec.h"

#define MAX_LINES (64 * 1024)

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_proto: %s\n", what);
    abort();
}

/* Feeds data in pieces of the given sizes (cycled) and collects the lines. */
static size_t split(const uint8_t *data, size_t size, const uint8_t *pieces, size_t n_pieces,
                    char **lines)
{
    jg_linebuf_t lb;
    jg_linebuf_init(&lb);
    size_t n = 0, off = 0, k = 0;
    while (off < size) {
        size_t piece = n_pieces ? 1 + pieces[k++ % n_pieces] % 32 : size;
        if (piece > size - off)
            piece = size - off;
        jg_linebuf_append(&lb, (const char *)data + off, piece);
        off += piece;
        int too_long;
        char *line;
        while ((line = jg_linebuf_next(&lb, &too_long)) != NULL) {
            if (n == MAX_LINES)
                fail("more lines than the input can hold");
            lines[n++] = line;
        }
        if (too_long)
            fail("a line under the cap was reported too long");
    }
    jg_linebuf_clear(&lb);
    return n;
}

/* The daemon's steps for one line, up to the request handler. */
static void handle_line(const char *line)
{
    jg_error_t err;
    json_t *req = jg_proto_decode(line, &err);
    if (!req)
        return;
    if (!json_is_object(req))
        fail("jg_proto_decode returned a non-object");

    size_t len;
    char *encoded = jg_proto_encode(req, &len);
    if (len == 0 || encoded[len - 1] != '\n' || memchr(encoded, '\n', len - 1) ||
        strlen(encoded) != len)
        fail("an encoded message is not exactly one line");
    encoded[len - 1] = '\0';
    json_t *back = jg_proto_decode(encoded, &err);
    if (!back || !json_equal(req, back))
        fail("a message does not survive encode + decode");
    json_decref(back);
    free(encoded);

    const char *op = json_string_value(json_object_get(req, "op"));
    const char *yaml = json_string_value(json_object_get(req, "yaml"));
    if (op && strcmp(op, "submit") == 0 && yaml) {
        /* op_submit: parse, then `-n NAME` and `--infra INFRA` from the request. */
        const char *file = json_string_value(json_object_get(req, "file"));
        const char *name = json_string_value(json_object_get(req, "name"));
        const char *infra = json_string_value(json_object_get(req, "infra"));
        jg_spec_errors_t errs = {0};
        jg_group_spec_t *spec = jg_spec_parse(yaml, strlen(yaml), file, &errs);
        if (spec && name && jg_spec_set_name(spec, name, &err) == 0 &&
            strcmp(spec->name, name) != 0)
            fail("jg_spec_set_name accepted a name but did not set it");
        if (spec && infra)
            (void)jg_spec_set_infra(spec, infra, &err);
        if (spec) {
            /* The store keeps the renamed, re-pinned spec as JSON and reads it back. */
            char *json = jg_spec_to_json(spec);
            jg_group_spec_t *stored = json ? jg_spec_from_json(json, &err) : NULL;
            if (!stored)
                fail("a submitted spec cannot be read back from its JSON form");
            jg_spec_free(stored);
            free(json);
        }
        jg_spec_free(spec);
        jg_spec_errors_free(&errs);
    }
    const char *volume = json_string_value(json_object_get(req, "name"));
    if (op && strncmp(op, "volume_", 7) == 0 && volume)
        (void)jg_spec_is_dns_label(volume);     /* op_volume_create's check of the name */
    json_decref(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Bounded by -max_len in practice; this keeps MAX_LINES sufficient. */
    if (size >= MAX_LINES)
        return 0;
    static char *whole[MAX_LINES], *pieces[MAX_LINES];
    size_t n_whole = split(data, size, NULL, 0, whole);
    /* The last 8 bytes choose the piece sizes of the second pass. */
    size_t n_sizes = size < 8 ? size : 8;
    size_t n_pieces = split(data, size, data + size - n_sizes, n_sizes, pieces);
    if (n_whole != n_pieces)
        fail("the number of lines depends on how the stream was cut");

    const uint8_t *start = data;
    for (size_t i = 0; i < n_whole; i++) {
        const uint8_t *nl = memchr(start, '\n', size - (size_t)(start - data));
        if (!nl)
            fail("a line was returned without its newline");
        /* A line is a C string: a NUL byte in it ends what the daemon sees. */
        size_t want = (size_t)(nl - start), got = strlen(whole[i]);
        if (strcmp(whole[i], pieces[i]) != 0 || got > want || memcmp(whole[i], start, got) != 0 ||
            (got < want && start[got] != '\0'))
            fail("a line differs from the input between two newlines");
        start = nl + 1;
    }
    if (memchr(start, '\n', size - (size_t)(start - data)))
        fail("a complete line was not returned");

    for (size_t i = 0; i < n_whole; i++) {
        handle_line(whole[i]);
        free(whole[i]);
        free(pieces[i]);
    }
    return 0;
}
