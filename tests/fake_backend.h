/* fake_backend.h - a scripted backend for sched's tests: it creates nothing,
 * records what sched asks of it, and reports what the test scripts.
 *
 * A test owns a fake_state_t per instance (it outlives the instance, so a
 * "daemon restart" - a new sched with new instances - keeps the counts) and
 * makes the instance with fake_backend_create; sched owns the instance from
 * then on (jg_sched_options_t.extra_backends).  Events the fake reports on its
 * own (CLEANED, STOPPED, CAPACITY_CHANGED, queued pieces) come from the loop,
 * as the interface says; fake_backend_emit delivers one at once, which the
 * scripted misbehaviours (reporting from inside launch) also do. */
#ifndef JG_TEST_FAKE_BACKEND_H
#define JG_TEST_FAKE_BACKEND_H

#include "jgsched/backend.h"

typedef struct {
    /* Script: set by the test. */
    int refuse_launch_from;     /* launch() fails from this call on (0: never) */
    int fail_nodes_from;        /* launch() reports LAUNCH_FAILED for every node, from inside
                                 * the call, from this call on (0: never) */
    int exit_in_launch;         /* this launch() call reports its nodes exiting 3, from inside
                                 * the call (0: none does) */
    bool refuse_reattach;
    bool slow_cleanup;          /* cleanup() reports nothing: the test calls
                                 * fake_backend_cleaned() when it is done */
    bool slow_stop;             /* stop() reports nothing: the test plays the exits, then
                                 * fake_backend_stopped() */
    jg_capacity_t *capacity;    /* what the backend holds; NULL: unlimited */
    const char *warning;        /* warning(); NULL: none */
    bool volumes_in_infra;      /* ops->volumes_in_infra, read at fake_backend_create */
    /* Record: what sched asked. */
    int launches;               /* launch() calls, refused ones included */
    int last_attempt;           /* attempt of the first node of the last launch */
    char last_infra[64];        /* jg_launch_t.infra of the last launch */
    int64_t last_group;         /* group of the last launch */
    size_t last_n_volumes;      /* jg_launch_t.n_volumes of the last launch */
    int reattached;             /* nodes handed to reattach() */
    int64_t last_log_bytes;     /* of the first node of the last reattach() */
    int64_t last_log_bytes_attempt;
    int stops;                  /* stop() calls */
    int last_stop_job;          /* job_index of the last stop() (-1: the group) */
    int cleanups;               /* cleanup() calls */
    int64_t last_cleanup;       /* the group of the last cleanup() */
    int sweeps;                 /* sweep() calls */
    size_t last_sweep_live;     /* how many live groups the last sweep() was told of */
    int fits;                   /* fit() calls */
} fake_state_t;

/* A new instance serving infra `name` ("fake", "kubernetes/ctx-a"), kind
 * "fake", scripted and recorded by st (borrowed). */
jg_backend_t *fake_backend_create(const char *name, fake_state_t *st, jg_loop_t *loop);

/* Where its events go (sched's jg_sched_backend_event and the sched). */
void fake_backend_set_sink(jg_backend_t *b, jg_backend_event_f on_event, void *ctx);

/* Delivers ev now (strings and data are the caller's). */
void fake_backend_emit(jg_backend_t *b, const jg_backend_event_t *ev);
/* Queues ev (copied) for delivery from the loop. */
void fake_backend_queue(jg_backend_t *b, const jg_backend_event_t *ev);

/* The slow cleanup of group_id is done: CLEANED, from the loop. */
void fake_backend_cleaned(jg_backend_t *b, int64_t group_id);
/* st->capacity changed: CAPACITY_CHANGED, from the loop. */
void fake_backend_capacity_changed(jg_backend_t *b);
/* A piece of output of one node, from the loop. */
void fake_backend_log(jg_backend_t *b, int64_t group_id, int job, int rank, int attempt,
                      const char *text);

#endif
