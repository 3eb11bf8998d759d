/* cli.h - what the files of the `jgsched` command share: exit codes, the
 * connection to jgschedd, option parsing, tables and formatting.
 *
 * Private to src/cli/: nothing outside the command includes it.  Every
 * command is a function `int jg_cli_cmd_X(int argc, char **argv)` whose argv[0]
 * is the command's name and whose return value is the process exit status.
 */
#ifndef JGSCHED_CLI_H
#define JGSCHED_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "jgsched/error.h"
#include "jgsched/paths.h"
#include "jgsched/proto.h"

/* Exit codes scripts can trust (DESIGN section 8). */
enum {
    JG_EXIT_OK = 0,
    JG_EXIT_FAIL = 1,           /* the daemon said no, or the group did not succeed */
    JG_EXIT_USAGE = 2,          /* bad arguments, a file that does not validate */
    JG_EXIT_NO_DAEMON = 3,      /* jgschedd cannot be reached or started, or went away */
    JG_EXIT_DAEMON_FAILED = 4,  /* jgschedd could not act (its store, the disk) or
                                 * answered something unreadable */
    JG_EXIT_INTERRUPTED = 130,  /* Ctrl-C while following */
};

/* ---- commands (one file each; daemon lives in client.c) ---- */
int jg_cli_cmd_submit(int argc, char **argv);
int jg_cli_cmd_queue(int argc, char **argv);
int jg_cli_cmd_show(int argc, char **argv);
int jg_cli_cmd_logs(int argc, char **argv);
int jg_cli_cmd_cancel(int argc, char **argv);
int jg_cli_cmd_validate(int argc, char **argv);
int jg_cli_cmd_policy(int argc, char **argv);          /* cmd_policy.c */
int jg_cli_cmd_infra(int argc, char **argv);           /* cmd_infra.c */
int jg_cli_cmd_volume(int argc, char **argv);          /* cmd_volume.c */
int jg_cli_cmd_daemon(int argc, char **argv);

/* ---- main.c: diagnostics and option parsing ---- */

/* "jgsched: <message>\n" on stderr. */
void jg_cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "jgsched CMD: <message>" and a hint to run --help, on stderr;
 * returns JG_EXIT_USAGE. */
int jg_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* getopt_long over a command's argv (argv[0] is the command), options and
 * operands in any order.  Returns the option's value, -1 at the end, or '?'
 * after printing a usage error that names the bad argument (the caller then
 * returns JG_EXIT_USAGE).  shortopts must not start with ':' (added here). */
int jg_cli_getopt(int argc, char **argv, const char *shortopts,
                  const struct option *longopts);

/* The end of a command's option switch: for 'h' prints usage on stdout and
 * returns JG_EXIT_OK; for anything else (a bad option, already reported)
 * returns JG_EXIT_USAGE. */
int jg_cli_help_or_usage(int opt, const char *usage);

/* Argument parsing for a command whose only options are --help and, when
 * json is not NULL, --json (sets *json), then jg_cli_operands(min, max, what).
 * Returns -1 to go on with the operands at optind, or the exit status after
 * --help or a bad argument. */
int jg_cli_getopt_simple(int argc, char **argv, const char *usage, bool *json, int min,
                         int max, const char *what);

/* Checks that at least min and at most max (-1: any number) operands follow
 * optind.  JG_EXIT_OK when they do; otherwise prints "expected WHAT" or
 * "unexpected argument 'X'" and returns JG_EXIT_USAGE. */
int jg_cli_operands(int argc, char **argv, int min, int max, const char *what);

/* A subcommand of a command such as `jgsched policy`. */
typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
} jg_cli_sub_t;

/* Runs the subcommand named by argv[1] with argv[0] = "CMD SUB" (for
 * messages) and getopt reset; -h/--help prints usage.  Returns its exit
 * status, or JG_EXIT_USAGE after naming a missing or unknown subcommand. */
int jg_cli_dispatch(int argc, char **argv, const char *usage, const jg_cli_sub_t *subs,
                    size_t nsubs);

/* Parses a group id (a positive integer); false if s is not one. */
bool jg_cli_parse_id(const char *s, long long *id);

/* ---- client.c: the connection to jgschedd ---- */

typedef struct {
    int fd;                 /* -1 when not connected */
    jg_linebuf_t lb;
    jg_paths_t paths;
    bool lost;              /* the last failure was the connection itself */
} jg_cli_client_t;

/* Connects to the daemon's socket.  With autostart, a socket where nothing
 * answers makes it start jgschedd (once, under a lock) and connect again;
 * never for a socket JGSCHED_SOCKET names (the message says so).
 * Fails (-1 + err, client closed) when no daemon can be reached: exit 3. */
int jg_cli_connect(jg_cli_client_t *c, bool autostart, jg_error_t *err);

/* Closes the connection and frees the paths; accepts a closed client. */
void jg_cli_close(jg_cli_client_t *c);

/* Sends one request (the reference is stolen, even on failure). */
int jg_cli_send(jg_cli_client_t *c, json_t *req, jg_error_t *err);

/* Waits up to timeout_ms (-1: forever) for the next message.  Returns 1 with a
 * new reference in *msg, 0 on timeout or when a signal interrupted the wait,
 * -1 + err when the connection failed or closed (c->lost set) or the daemon
 * sent something that is not a message (c->lost clear). */
int jg_cli_recv(jg_cli_client_t *c, int timeout_ms, json_t **msg, jg_error_t *err);

/* jg_cli_recv without the decoding: the next message's line in *line
 * (NUL-terminated, caller frees), for a caller that reads it with
 * jg_json_tokenize (a queue page). */
int jg_cli_recv_line(jg_cli_client_t *c, int timeout_ms, char **line, jg_error_t *err);

/* Sends req (stolen) and waits for its reply (new reference), or NULL + err. */
json_t *jg_cli_call(jg_cli_client_t *c, json_t *req, jg_error_t *err);

/* The usual shape of a command: connect (starting a daemon if needed), send
 * req (stolen), and require "ok": true.  Returns JG_EXIT_OK with the reply in
 * *reply (caller decrefs), or prints the problem and returns JG_EXIT_FAIL (the
 * daemon refused), JG_EXIT_DAEMON_FAILED (jg_cli_failure_code) or
 * JG_EXIT_NO_DAEMON.  c must be closed by the caller. */
int jg_cli_request(jg_cli_client_t *c, json_t *req, json_t **reply);

/* The exit status for a reply with "ok": false: JG_EXIT_DAEMON_FAILED when
 * the daemon says it could not act (docs/protocol.md, "code"), else refused. */
int jg_cli_failure_code(const json_t *reply, int refused);

/* The exit status for a failed jg_cli_call/jg_cli_recv on c: the daemon went
 * away (JG_EXIT_NO_DAEMON) or answered garbage (JG_EXIT_DAEMON_FAILED). */
int jg_cli_call_failure_code(const jg_cli_client_t *c);

/* jg_cli_request, then requires the reply's field key to be of the given
 * type: *field borrows it from *reply.  A missing one prints "bad reply from
 * jgschedd: no KEY array|object" and returns JG_EXIT_FAIL (reply kept). */
int jg_cli_request_get(jg_cli_client_t *c, json_t *req, const char *key, json_type type,
                       json_t **reply, json_t **field);

/* ---- output.c: tables, times, JSON ---- */

typedef struct jg_cli_table jg_cli_table_t;

/* A table of ncols columns with the given headers (copied).  Cells may hold
 * several lines ('\n'): the row then spans them, other columns left blank. */
jg_cli_table_t *jg_cli_table_new(size_t ncols, const char *const *headers);
void jg_cli_table_free(jg_cli_table_t *t);          /* accepts NULL */
void jg_cli_table_align_right(jg_cli_table_t *t, size_t col);
/* Appends a row of ncols cells (copied; NULL prints as empty). */
void jg_cli_table_add(jg_cli_table_t *t, const char *const *cells);
/* From now on (on a table still empty) jg_cli_table_add keeps the cells'
 * pointers instead of copies: the caller keeps them alive until the table is
 * freed.  A listing of 100,000 rows then holds its text once. */
void jg_cli_table_borrow_cells(jg_cli_table_t *t);
size_t jg_cli_table_rows(const jg_cli_table_t *t);
/* Width of the widest line of a column, header included. */
size_t jg_cli_table_width(const jg_cli_table_t *t, size_t col);
/* Prints header and rows: columns separated by two spaces, widths from the
 * content, no trailing spaces. */
void jg_cli_table_print(const jg_cli_table_t *t, FILE *out);

/* Growable string for building cells. */
typedef struct {
    char *s;
    size_t len, cap;
} jg_cli_buf_t;
void jg_cli_buf_printf(jg_cli_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void jg_cli_buf_free(jg_cli_buf_t *b);
const char *jg_cli_buf_str(const jg_cli_buf_t *b);  /* "" when empty */

/* Formatting into a caller's buffer (returned for convenience).  Times are
 * protocol timestamps (seconds since the epoch, 0 meaning "not yet"). */
#define JG_CLI_FMT_SIZE 48
/* "42s", "1m02s", "2h05m", "3d04h" */
char *jg_cli_fmt_duration(double seconds, char *buf, size_t n);
/* "10.4s" below a minute, otherwise as jg_cli_fmt_duration */
char *jg_cli_fmt_elapsed(double seconds, char *buf, size_t n);
/* started..ended (or now) as a duration; "-" when never started */
char *jg_cli_fmt_span(double started, double ended, char *buf, size_t n);
/* "11:02:33" when today, else "Nov 27 11:02"; "-" for 0 */
char *jg_cli_fmt_when(double ts, char *buf, size_t n);
/* "2025-11-27 11:02:33"; "-" for 0 */
char *jg_cli_fmt_datetime(double ts, char *buf, size_t n);
/* "11:02:33.412" when today, else "Nov 27 11:02:33"; "-" for 0 */
char *jg_cli_fmt_clock(double ts, char *buf, size_t n);
/* exit code or "-" when negative (not exited) */
char *jg_cli_fmt_exit(long long code, char *buf, size_t n);

/* Now, as a protocol timestamp. */
double jg_cli_now(void);

/* Pretty JSON (2-space indent, sorted keys) and a newline on stdout. */
void jg_cli_print_json(const json_t *v);
/* The value at token i as jg_cli_print_json prints it (without the newline),
 * nested depth levels deep (each new line indented 2 * depth more), appended
 * to out; numbers keep the text they came in (the daemon writes jansson's). */
void jg_cli_json_pretty(jg_jsonw_t *out, const jg_jtoks_t *toks, size_t i, int depth);

/* Tolerant readers of daemon replies: a missing or mistyped field reads as
 * "" / def / 0 instead of crashing the display. */
const char *jg_cli_jstr(const json_t *obj, const char *key);
long long jg_cli_jint(const json_t *obj, const char *key, long long def);
double jg_cli_jnum(const json_t *obj, const char *key);
bool jg_cli_jbool(const json_t *obj, const char *key);

/* Terminal helpers: whether stdout is a terminal, its width (COLUMNS or 80
 * when unknown) and height (LINES or 24). */
bool jg_cli_stdout_is_tty(void);
int jg_cli_term_width(void);
int jg_cli_term_height(void);

/* Shortens s in place to at most width display columns, ending in "..."
 * when cut (bytes counted as columns; UTF-8 sequences are not split). */
void jg_cli_truncate(char *s, size_t width);

/* True for states whose reason a user wants to see next to them (PENDING,
 * RECOVERING, the failures, cancellations). */
bool jg_cli_state_wants_reason(const char *state);

#endif
