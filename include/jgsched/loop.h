/* loop.h - the daemon's single-threaded event loop (epoll + timers).
 *
 * Every source of work (client sockets, node status pipes, pidfds, a future
 * libcurl multi handle) registers a file descriptor here; nothing polls on a
 * timer.  Timers exist for deadlines (grace periods, restart delays).  An
 * optional "prepare" callback runs once per loop turn before sleeping: that is
 * where the scheduler makes its one admission pass (flux sched-simple style).
 * The loop never owns the descriptors it watches.  Fairness between clients
 * is the callbacks' part: each does a bounded amount of work per call and
 * asks for another turn with jg_loop_defer_fd, as Redis's clients do.
 */
#ifndef JGSCHED_LOOP_H
#define JGSCHED_LOOP_H

#include <stdint.h>

#include "jgsched/error.h"

typedef struct jg_loop jg_loop_t;

/* events: a mask of EPOLLIN / EPOLLOUT (from <sys/epoll.h>); revents as received. */
typedef void (*jg_fd_f)(jg_loop_t *loop, int fd, uint32_t revents, void *arg);
typedef void (*jg_timer_f)(jg_loop_t *loop, void *arg);
typedef void (*jg_prepare_f)(jg_loop_t *loop, void *arg);

jg_loop_t *jg_loop_create(jg_error_t *err);
void jg_loop_destroy(jg_loop_t *loop);      /* accepts NULL; cancels all timers */

int jg_loop_add_fd(jg_loop_t *loop, int fd, uint32_t events, jg_fd_f cb, void *arg,
                   jg_error_t *err);
int jg_loop_mod_fd(jg_loop_t *loop, int fd, uint32_t events, jg_error_t *err);
/* Safe to call from inside that fd's own callback. */
void jg_loop_del_fd(jg_loop_t *loop, int fd);

/* Calls fd's callback once more on the next loop turn, with EPOLLIN, whether
 * or not new input arrives: for a client that still holds buffered requests
 * after its fair share of this turn (epoll only reports the socket, not what
 * the daemon already read from it).  The next turn does not sleep.  At most
 * one callback per fd per turn: if epoll reports the fd on that turn too, the
 * two are one call.  A descriptor removed meanwhile is skipped; an unwatched
 * one is ignored. */
void jg_loop_defer_fd(jg_loop_t *loop, int fd);

/* One-shot timer after `ms` milliseconds; returns an id > 0 for cancelling. */
uint64_t jg_loop_add_timer(jg_loop_t *loop, int64_t ms, jg_timer_f cb, void *arg);
void jg_loop_cancel_timer(jg_loop_t *loop, uint64_t id);   /* unknown id: no-op */

void jg_loop_set_prepare(jg_loop_t *loop, jg_prepare_f cb, void *arg);

/* Runs until jg_loop_stop(); returns 0, or -1 + err if epoll itself failed. */
int jg_loop_run(jg_loop_t *loop, jg_error_t *err);
void jg_loop_stop(jg_loop_t *loop);

/* Monotonic and wall clocks, in milliseconds / microseconds. */
int64_t jg_now_mono_ms(void);
int64_t jg_now_wall_us(void);

#endif
