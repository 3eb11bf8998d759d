/* loop.c - epoll event loop with one-shot timers and a per-turn prepare hook.
 *
 * Watched descriptors live in a small table indexed by fd, so a callback may
 * remove its own (or another) descriptor safely: epoll results for a removed fd
 * are skipped by checking the table's generation.  Timers are a binary heap
 * ordered by deadline; cancelled timers are marked and dropped when they reach
 * the top, which keeps cancel O(log n) without a second index.
 *
 * A turn: due timers, the prepare hook, one epoll_wait, then the callbacks of
 * the reported descriptors and of those deferred on the previous turn, each
 * descriptor at most once.  Deferral is how a callback that stopped at its
 * fair share gets back to its buffered work without new input: the loop does
 * not sleep while any is pending, and level-triggered epoll re-reports input
 * still in the kernel.
 */
#include "jgsched/loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    jg_fd_f cb;
    void *arg;
    uint64_t gen;           /* 0: slot unused */
    uint64_t called_turn;   /* the turn of its last callback */
    bool deferred;          /* in loop->deferred */
    uint64_t deferred_turn; /* a turn on which it is called with EPOLLIN in any case */
} fd_slot_t;

typedef struct {
    int fd;
    uint64_t gen;
} deferred_t;

typedef struct {
    int64_t deadline_ms;
    uint64_t id;
    jg_timer_f cb;
    void *arg;
} timer_t_;

struct jg_loop {
    int epfd;
    bool stop;
    fd_slot_t *fds;
    size_t n_fds;
    uint64_t next_gen;
    timer_t_ *heap;
    size_t n_timers, cap_timers;
    uint64_t next_timer_id;
    uint64_t *cancelled;        /* ids cancelled but still in the heap */
    size_t n_cancelled, cap_cancelled;
    jg_prepare_f prepare;
    void *prepare_arg;
    uint64_t turn;
    deferred_t *deferred, *running;     /* for the next turn; being run this turn */
    size_t n_deferred, cap_deferred, n_running, cap_running;
};

int64_t jg_now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t jg_now_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

jg_loop_t *jg_loop_create(jg_error_t *err)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        jg_errprintf(err, "epoll_create1: %s", strerror(errno));
        return NULL;
    }
    jg_loop_t *loop = jg_xcalloc(1, sizeof *loop);
    loop->epfd = epfd;
    loop->next_gen = 1;
    loop->next_timer_id = 1;
    return loop;
}

void jg_loop_destroy(jg_loop_t *loop)
{
    if (!loop)
        return;
    close(loop->epfd);
    free(loop->fds);
    free(loop->heap);
    free(loop->cancelled);
    free(loop->deferred);
    free(loop->running);
    free(loop);
}

int jg_loop_add_fd(jg_loop_t *loop, int fd, uint32_t events, jg_fd_f cb, void *arg,
                   jg_error_t *err)
{
    if (fd < 0)
        return jg_errprintf(err, "jg_loop_add_fd: invalid descriptor %d", fd);
    if ((size_t)fd >= loop->n_fds) {
        size_t n = loop->n_fds ? loop->n_fds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        loop->fds = jg_xrealloc(loop->fds, n * sizeof *loop->fds);
        memset(loop->fds + loop->n_fds, 0, (n - loop->n_fds) * sizeof *loop->fds);
        loop->n_fds = n;
    }
    uint64_t gen = loop->next_gen++;
    struct epoll_event ev = {.events = events, .data.u64 = ((uint64_t)fd << 32) | (gen & 0xffffffffu)};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return jg_errprintf(err, "epoll_ctl(ADD, fd %d): %s", fd, strerror(errno));
    loop->fds[fd] = (fd_slot_t){.cb = cb, .arg = arg, .gen = gen & 0xffffffffu};
    return 0;
}

int jg_loop_mod_fd(jg_loop_t *loop, int fd, uint32_t events, jg_error_t *err)
{
    if (fd < 0 || (size_t)fd >= loop->n_fds || !loop->fds[fd].gen)
        return jg_errprintf(err, "jg_loop_mod_fd: descriptor %d is not watched", fd);
    struct epoll_event ev = {.events = events, .data.u64 = ((uint64_t)fd << 32) | loop->fds[fd].gen};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return jg_errprintf(err, "epoll_ctl(MOD, fd %d): %s", fd, strerror(errno));
    return 0;
}

void jg_loop_del_fd(jg_loop_t *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->n_fds || !loop->fds[fd].gen)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    loop->fds[fd] = (fd_slot_t){0};
}

void jg_loop_defer_fd(jg_loop_t *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->n_fds || !loop->fds[fd].gen || loop->fds[fd].deferred)
        return;
    if (loop->n_deferred == loop->cap_deferred) {
        loop->cap_deferred = loop->cap_deferred ? loop->cap_deferred * 2 : 16;
        loop->deferred = jg_xrealloc(loop->deferred, loop->cap_deferred * sizeof *loop->deferred);
    }
    loop->deferred[loop->n_deferred++] = (deferred_t){.fd = fd, .gen = loop->fds[fd].gen};
    loop->fds[fd].deferred = true;
}

/* Calls fd's callback unless it went away or was already called this turn. */
static void call_fd(jg_loop_t *loop, int fd, uint64_t gen, uint32_t revents)
{
    if ((size_t)fd >= loop->n_fds || loop->fds[fd].gen != gen ||
        loop->fds[fd].called_turn == loop->turn)
        return;             /* removed by an earlier callback, or served already */
    loop->fds[fd].called_turn = loop->turn;
    fd_slot_t slot = loop->fds[fd];
    if (slot.deferred_turn == loop->turn)
        revents |= EPOLLIN;
    slot.cb(loop, fd, revents, slot.arg);
}

/* Takes the deferrals made before this turn; those made while this turn's
 * callbacks run belong to the next one. */
static void take_deferred(jg_loop_t *loop)
{
    if (loop->cap_running < loop->n_deferred) {
        loop->cap_running = loop->cap_deferred;
        loop->running = jg_xrealloc(loop->running, loop->cap_running * sizeof *loop->running);
    }
    for (size_t i = 0; i < loop->n_deferred; i++) {
        deferred_t d = loop->deferred[i];
        loop->running[i] = d;
        if (loop->fds[d.fd].gen == d.gen) {
            loop->fds[d.fd].deferred = false;
            loop->fds[d.fd].deferred_turn = loop->turn;
        }
    }
    loop->n_running = loop->n_deferred;
    loop->n_deferred = 0;
}

static void heap_swap(timer_t_ *h, size_t a, size_t b)
{
    timer_t_ t = h[a];
    h[a] = h[b];
    h[b] = t;
}

static bool heap_less(const timer_t_ *a, const timer_t_ *b)
{
    return a->deadline_ms < b->deadline_ms ||
           (a->deadline_ms == b->deadline_ms && a->id < b->id);
}

uint64_t jg_loop_add_timer(jg_loop_t *loop, int64_t ms, jg_timer_f cb, void *arg)
{
    if (loop->n_timers == loop->cap_timers) {
        loop->cap_timers = loop->cap_timers ? loop->cap_timers * 2 : 16;
        loop->heap = jg_xrealloc(loop->heap, loop->cap_timers * sizeof *loop->heap);
    }
    size_t i = loop->n_timers++;
    uint64_t id = loop->next_timer_id++;
    loop->heap[i] = (timer_t_){.deadline_ms = jg_now_mono_ms() + (ms > 0 ? ms : 0),
                               .id = id, .cb = cb, .arg = arg};
    while (i > 0 && heap_less(&loop->heap[i], &loop->heap[(i - 1) / 2])) {
        heap_swap(loop->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return id;
}

static void heap_pop(jg_loop_t *loop)
{
    timer_t_ *h = loop->heap;
    h[0] = h[--loop->n_timers];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->n_timers && heap_less(&h[l], &h[m]))
            m = l;
        if (r < loop->n_timers && heap_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(h, i, m);
        i = m;
    }
}

static bool take_cancelled(jg_loop_t *loop, uint64_t id)
{
    for (size_t i = 0; i < loop->n_cancelled; i++) {
        if (loop->cancelled[i] == id) {
            loop->cancelled[i] = loop->cancelled[--loop->n_cancelled];
            return true;
        }
    }
    return false;
}

void jg_loop_cancel_timer(jg_loop_t *loop, uint64_t id)
{
    bool pending = false;
    for (size_t i = 0; i < loop->n_timers; i++) {
        if (loop->heap[i].id == id) {
            pending = true;
            break;
        }
    }
    if (!pending)
        return;
    if (loop->n_cancelled == loop->cap_cancelled) {
        loop->cap_cancelled = loop->cap_cancelled ? loop->cap_cancelled * 2 : 16;
        loop->cancelled = jg_xrealloc(loop->cancelled, loop->cap_cancelled * sizeof(uint64_t));
    }
    loop->cancelled[loop->n_cancelled++] = id;
}

void jg_loop_set_prepare(jg_loop_t *loop, jg_prepare_f cb, void *arg)
{
    loop->prepare = cb;
    loop->prepare_arg = arg;
}

void jg_loop_stop(jg_loop_t *loop)
{
    loop->stop = true;
}

static void run_due_timers(jg_loop_t *loop)
{
    int64_t now = jg_now_mono_ms();
    while (loop->n_timers && loop->heap[0].deadline_ms <= now) {
        timer_t_ t = loop->heap[0];
        heap_pop(loop);
        if (take_cancelled(loop, t.id))
            continue;
        t.cb(loop, t.arg);
    }
}

int jg_loop_run(jg_loop_t *loop, jg_error_t *err)
{
    struct epoll_event evs[64];
    loop->stop = false;
    while (!loop->stop) {
        run_due_timers(loop);
        if (loop->stop)
            break;
        if (loop->prepare)
            loop->prepare(loop, loop->prepare_arg);
        if (loop->stop)
            break;
        int timeout = -1;
        while (loop->n_timers && take_cancelled(loop, loop->heap[0].id))
            heap_pop(loop);
        if (loop->n_timers) {
            int64_t d = loop->heap[0].deadline_ms - jg_now_mono_ms();
            timeout = d < 0 ? 0 : (d > 60000 ? 60000 : (int)d);
        }
        if (loop->n_deferred)
            timeout = 0;        /* work is waiting in a buffer: do not sleep */
        int n = epoll_wait(loop->epfd, evs, 64, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return jg_errprintf(err, "epoll_wait: %s", strerror(errno));
        }
        loop->turn++;
        take_deferred(loop);
        for (int i = 0; i < n; i++)
            call_fd(loop, (int)(evs[i].data.u64 >> 32), evs[i].data.u64 & 0xffffffffu,
                    evs[i].events);
        for (size_t i = 0; i < loop->n_running; i++)
            call_fd(loop, loop->running[i].fd, loop->running[i].gen, EPOLLIN);
        loop->n_running = 0;
    }
    return 0;
}
