/* Unit tests of the event loop: descriptors, timers (order, cancel), prepare. */
#include <criterion/criterion.h>
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
