/* Unit tests of the event loop: descriptors, timers (order, cancel), prepare,
 * and the deferral that gives each client its fair share of a turn. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "jgsched/loop.h"

typedef struct {
    int order[8];
    int n;
    jg_loop_t *loop;
} trace_t;

static void record(jg_loop_t *loop, void *arg, int what)
{
    (void)loop;
    trace_t *t = arg;
    t->order[t->n++] = what;
}

static void t1(jg_loop_t *l, void *a) { record(l, a, 1); }
static void t2(jg_loop_t *l, void *a) { record(l, a, 2); }
static void t3(jg_loop_t *l, void *a) { record(l, a, 3); }
static void stop_cb(jg_loop_t *l, void *a) { (void)a; jg_loop_stop(l); }

Test(loop, timers_fire_in_deadline_order_and_cancelled_ones_never)
{
    jg_error_t err;
    jg_loop_t *loop = jg_loop_create(&err);
    cr_assert_not_null(loop);
    trace_t t = {.loop = loop};
    jg_loop_add_timer(loop, 30, t3, &t);
    jg_loop_add_timer(loop, 10, t1, &t);
    uint64_t id2 = jg_loop_add_timer(loop, 20, t2, &t);
    jg_loop_add_timer(loop, 50, stop_cb, NULL);
    jg_loop_cancel_timer(loop, id2);
    jg_loop_cancel_timer(loop, 999999);     /* unknown: no effect */
    cr_assert_eq(jg_loop_run(loop, &err), 0);
    cr_assert_eq(t.n, 2);
    cr_assert_eq(t.order[0], 1);
    cr_assert_eq(t.order[1], 3);
    jg_loop_destroy(loop);
}

typedef struct {
    int reads;
    char got[16];
} reader_t;

static void on_read(jg_loop_t *loop, int fd, uint32_t ev, void *arg)
{
    (void)ev;
    reader_t *r = arg;
    ssize_t n = read(fd, r->got, sizeof r->got - 1);
    if (n > 0)
        r->got[n] = '\0';
    r->reads++;
    jg_loop_del_fd(loop, fd);       /* removing itself inside its callback is allowed */
    jg_loop_stop(loop);
}

Test(loop, readable_descriptor_calls_back_and_may_remove_itself)
{
    jg_error_t err;
    jg_loop_t *loop = jg_loop_create(&err);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    reader_t r = {0};
    cr_assert_eq(jg_loop_add_fd(loop, p[0], EPOLLIN, on_read, &r, &err), 0);
    cr_assert_eq(write(p[1], "hi", 2), 2);
    jg_loop_add_timer(loop, 2000, stop_cb, NULL);   /* bound the test */
    cr_assert_eq(jg_loop_run(loop, &err), 0);
    cr_assert_eq(r.reads, 1);
    cr_assert_str_eq(r.got, "hi");
    cr_assert_eq(jg_loop_mod_fd(loop, p[0], EPOLLIN, &err), -1, "a removed fd is not watched");
    close(p[0]);
    close(p[1]);
    jg_loop_destroy(loop);
}

static void count_prepare(jg_loop_t *loop, void *arg)
{
    int *n = arg;
    if (++*n == 3)
        jg_loop_stop(loop);
}

static void noop(jg_loop_t *l, void *a) { (void)l; (void)a; }

Test(loop, prepare_runs_once_per_turn)
{
    jg_error_t err;
    jg_loop_t *loop = jg_loop_create(&err);
    int n = 0;
    jg_loop_set_prepare(loop, count_prepare, &n);
    for (int i = 0; i < 3; i++)
        jg_loop_add_timer(loop, 5 * (i + 1), noop, NULL);
    cr_assert_eq(jg_loop_run(loop, &err), 0);
    cr_assert_eq(n, 3);
    jg_loop_destroy(loop);
}

Test(loop, adding_an_invalid_descriptor_fails_with_a_message)
{
    jg_error_t err;
    jg_loop_t *loop = jg_loop_create(&err);
    cr_assert_eq(jg_loop_add_fd(loop, -1, EPOLLIN, on_read, NULL, &err), -1);
    cr_assert(strstr(err.text, "invalid descriptor") != NULL);
    cr_assert_eq(jg_loop_add_fd(loop, 987, EPOLLIN, on_read, NULL, &err), -1);
    cr_assert(strstr(err.text, "987") != NULL);
    jg_loop_destroy(loop);
}

/* ---- fair share: deferred descriptors ---------------------------------- */

typedef struct {
    int calls;
    int max_calls;
    uint64_t turn_of_call[16];
    uint64_t *turn;             /* counted by the prepare hook */
    bool defer;
} busy_t;

static void count_turns(jg_loop_t *loop, void *arg)
{
    (void)loop;
    uint64_t *turn = arg;
    (*turn)++;
}

/* A client with more buffered work than one turn allows: it does one unit
 * and asks for another turn, never reading the descriptor. */
static void on_busy(jg_loop_t *loop, int fd, uint32_t ev, void *arg)
{
    busy_t *b = arg;
    cr_assert(ev & EPOLLIN, "a deferred callback is told there is input");
    b->turn_of_call[b->calls++] = b->turn ? *b->turn : 0;
    if (b->calls == b->max_calls)
        jg_loop_stop(loop);
    else if (b->defer)
        jg_loop_defer_fd(loop, fd);
}

Test(loop, a_deferred_descriptor_is_called_again_without_new_input)
{
    jg_error_t err;
    jg_loop_t *loop = jg_loop_create(&err);
    int p[2];
    cr_assert_eq(pipe(p), 0);       /* never written: epoll never reports it */
    busy_t b = {.max_calls = 5, .defer = true};
    cr_assert_eq(jg_loop_add_fd(loop, p[0], EPOLLIN, on_busy, &b, &err), 0);
    jg_loop_defer_fd(loop, p[0]);
    jg_loop_add_timer(loop, 5000, stop_cb, NULL);   /* bound the test */
    int64_t t0 = jg_now_mono_ms();
    cr_assert_eq(jg_loop_run(loop, &err), 0);
    cr_assert_eq(b.calls, 5);
    cr_assert_lt(jg_now_mono_ms() - t0, 2000, "the loop slept although work was deferred");
    close(p[0]);
    close(p[1]);
    jg_loop_destroy(loop);
}

Test(loop, a_descriptor_deferred_and_reported_is_called_once_per_turn)
{
    jg_error_t err;
    jg_loop_t *loop = jg_loop_create(&err);
    uint64_t turn = 0;
    jg_loop_set_prepare(loop, count_turns, &turn);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "x", 1), 1);     /* level-triggered: reported every turn */
    busy_t b = {.max_calls = 6, .defer = true, .turn = &turn};
    cr_assert_eq(jg_loop_add_fd(loop, p[0], EPOLLIN, on_busy, &b, &err), 0);
    jg_loop_add_timer(loop, 5000, stop_cb, NULL);
    cr_assert_eq(jg_loop_run(loop, &err), 0);
    cr_assert_eq(b.calls, 6);
    for (int i = 1; i < b.calls; i++)
        cr_assert_gt(b.turn_of_call[i], b.turn_of_call[i - 1], "call %d shares turn %llu", i,
                     (unsigned long long)b.turn_of_call[i]);
    close(p[0]);
    close(p[1]);
    jg_loop_destroy(loop);
}

static void never_called(jg_loop_t *loop, int fd, uint32_t ev, void *arg)
{
    (void)loop;
    (void)fd;
    (void)ev;
    (void)arg;
    cr_assert_fail("the callback of a removed descriptor ran");
}

Test(loop, a_deferred_descriptor_removed_before_its_turn_is_skipped)
{
    jg_error_t err;
    jg_loop_t *loop = jg_loop_create(&err);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(jg_loop_add_fd(loop, p[0], EPOLLIN, never_called, NULL, &err), 0);
    jg_loop_defer_fd(loop, p[0]);
    jg_loop_del_fd(loop, p[0]);
    jg_loop_defer_fd(loop, p[1]);       /* not watched: ignored */
    jg_loop_add_timer(loop, 30, stop_cb, NULL);
    cr_assert_eq(jg_loop_run(loop, &err), 0);
    close(p[0]);
    close(p[1]);
    jg_loop_destroy(loop);
}

/* Two clients with endless buffered work: each is served once per turn, so
 * neither starves the other. */
Test(loop, two_deferring_clients_share_the_turns_evenly)
{
    jg_error_t err;
    jg_loop_t *loop = jg_loop_create(&err);
    uint64_t turn = 0;
    jg_loop_set_prepare(loop, count_turns, &turn);
    int p[2], q[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(pipe(q), 0);
    busy_t a = {.max_calls = 16, .defer = true, .turn = &turn};
    busy_t b = {.max_calls = 1000, .defer = true, .turn = &turn};
    cr_assert_eq(jg_loop_add_fd(loop, p[0], EPOLLIN, on_busy, &a, &err), 0);
    cr_assert_eq(jg_loop_add_fd(loop, q[0], EPOLLIN, on_busy, &b, &err), 0);
    jg_loop_defer_fd(loop, p[0]);
    jg_loop_defer_fd(loop, q[0]);
    jg_loop_add_timer(loop, 5000, stop_cb, NULL);
    cr_assert_eq(jg_loop_run(loop, &err), 0);
    cr_assert_eq(a.calls, 16);
    cr_assert(b.calls >= 15 && b.calls <= 16, "b was called %d times while a was called 16",
              b.calls);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
    jg_loop_destroy(loop);
}
