/* fake_backend.c - the scripted backend of sched's tests (fake_backend.h). */
#include "fake_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jgsched/capacity.h"

typedef struct queued {
    struct queued *next;
    jg_backend_event_t ev;
    char *reason;
    char *data;
} queued_t;

typedef struct {
    jg_backend_t base;
    fake_state_t *st;
    jg_loop_t *loop;
    jg_backend_event_f on_event;
    void *ctx;
    queued_t *head, *tail;
    uint64_t timer;
    jg_backend_ops_t ops;   /* fake_ops, with the flags of st */
} fake_t;

static fake_t *impl(jg_backend_t *b)
{
    return b->impl;
}

void fake_backend_emit(jg_backend_t *b, const jg_backend_event_t *ev)
{
    fake_t *f = impl(b);
    if (f->on_event)
        f->on_event(f->ctx, ev);
}

static void deliver(jg_loop_t *loop, void *arg)
{
    (void)loop;
    fake_t *f = arg;
    f->timer = 0;
    while (f->head) {
        queued_t *q = f->head;
        f->head = q->next;
        if (!f->head)
            f->tail = NULL;
        q->ev.reason = q->reason;
        q->ev.data = q->data;
        fake_backend_emit(&f->base, &q->ev);
        free(q->reason);
        free(q->data);
        free(q);
    }
}

void fake_backend_queue(jg_backend_t *b, const jg_backend_event_t *ev)
{
    fake_t *f = impl(b);
    queued_t *q = calloc(1, sizeof *q);
    q->ev = *ev;
    q->ev.handle = NULL;
    q->ev.address = NULL;
    q->reason = ev->reason ? strdup(ev->reason) : NULL;
    if (ev->len) {
        q->data = malloc(ev->len);
        memcpy(q->data, ev->data, ev->len);
    }
    if (f->tail)
        f->tail->next = q;
    else
        f->head = q;
    f->tail = q;
    if (!f->timer)
        f->timer = jg_loop_add_timer(f->loop, 0, deliver, f);
}

void fake_backend_cleaned(jg_backend_t *b, int64_t group_id)
{
    jg_backend_event_t ev = {.type = JG_BACKEND_CLEANED, .group_id = group_id, .job_index = -1,
                             .rank = -1};
    fake_backend_queue(b, &ev);
}

void fake_backend_capacity_changed(jg_backend_t *b)
{
    jg_backend_event_t ev = {.type = JG_BACKEND_CAPACITY_CHANGED, .job_index = -1, .rank = -1};
    fake_backend_queue(b, &ev);
}

void fake_backend_log(jg_backend_t *b, int64_t group_id, int job, int rank, int attempt,
                      const char *text)
{
    jg_backend_event_t ev = {.type = JG_BACKEND_LOG, .group_id = group_id, .job_index = job,
                             .rank = rank, .attempt = attempt, .data = text,
                             .len = strlen(text)};
    fake_backend_queue(b, &ev);
}

void fake_backend_set_sink(jg_backend_t *b, jg_backend_event_f on_event, void *ctx)
{
    impl(b)->on_event = on_event;
    impl(b)->ctx = ctx;
}

/* ---- the operations ---- */

static jg_fit_t fake_fit(jg_backend_t *b, const jg_group_spec_t *spec, const jg_usage_t *held,
                         char *why, size_t len)
{
    fake_state_t *st = impl(b)->st;
    st->fits++;
    const jg_capacity_t *cap = st->capacity;
    if (!cap)
        return JG_FIT_NOW;
    for (size_t i = 0; i < spec->n_jobs; i++)
        if (!jg_capacity_node_fits(cap, b->name, &spec->jobs[i], why, len))
            return JG_FIT_NEVER;
    jg_usage_t idle = {0};
    char short_of[256];
    if (!jg_usage_group_fits(&idle, cap, spec, short_of, sizeof short_of)) {
        snprintf(why, len, "group %s can never start: even on an idle infra %s it %s", spec->name,
                 b->name, short_of + strlen("waiting for resources: "));
        return JG_FIT_NEVER;
    }
    return jg_usage_group_fits(held, cap, spec, why, len) ? JG_FIT_NOW : JG_FIT_NOT_NOW;
}

static int fake_launch(jg_backend_t *b, const jg_launch_t *req, jg_error_t *err)
{
    fake_state_t *st = impl(b)->st;
    st->launches++;
    st->last_attempt = req->n_nodes ? req->nodes[0].attempt : 0;
    st->last_group = req->group_id;
    st->last_n_volumes = req->n_volumes;
    snprintf(st->last_infra, sizeof st->last_infra, "%s", req->infra ? req->infra : "");
    if (st->refuse_launch_from && st->launches >= st->refuse_launch_from)
        return jg_errprintf(err, "the scripted backend refuses launch %d", st->launches);
    if (st->fail_nodes_from && st->launches >= st->fail_nodes_from) {
        for (size_t i = 0; i < req->n_nodes; i++) {
            jg_backend_event_t ev = {.type = JG_BACKEND_LAUNCH_FAILED, .group_id = req->group_id,
                                     .job_index = req->nodes[i].job_index,
                                     .rank = req->nodes[i].rank,
                                     .attempt = req->nodes[i].attempt,
                                     .reason = "the scripted node cannot be created"};
            fake_backend_emit(b, &ev);
        }
    }
    if (st->exit_in_launch == st->launches) {
        for (size_t i = 0; i < req->n_nodes; i++) {
            jg_backend_event_t ev = {.type = JG_BACKEND_NODE_EXITED, .group_id = req->group_id,
                                     .job_index = req->nodes[i].job_index,
                                     .rank = req->nodes[i].rank,
                                     .attempt = req->nodes[i].attempt, .exit_code = 3};
            fake_backend_emit(b, &ev);
        }
    }
    return 0;
}

static int fake_release(jg_backend_t *b, int64_t group_id, jg_error_t *err)
{
    (void)b, (void)group_id, (void)err;
    return 0;
}

static int fake_stop(jg_backend_t *b, int64_t group_id, int job_index, int rank, int grace_ms,
                     jg_error_t *err)
{
    (void)grace_ms, (void)err;
    fake_state_t *st = impl(b)->st;
    st->stops++;
    st->last_stop_job = job_index;
    if (!st->slow_stop) {
        jg_backend_event_t ev = {.type = JG_BACKEND_STOPPED, .group_id = group_id,
                                 .job_index = job_index, .rank = rank};
        fake_backend_queue(b, &ev);
    }
    return 0;
}

static int fake_reattach(jg_backend_t *b, int64_t group_id, const jg_node_handle_t *nodes,
                         size_t n, jg_error_t *err)
{
    fake_state_t *st = impl(b)->st;
    if (st->refuse_reattach)
        return jg_errprintf(err, "the scripted backend cannot find group %lld's nodes",
                            (long long)group_id);
    st->reattached += (int)n;
    if (n) {
        st->last_log_bytes = nodes[0].log_bytes;
        st->last_log_bytes_attempt = nodes[0].log_bytes_attempt;
    }
    return 0;
}

static int fake_cleanup(jg_backend_t *b, int64_t group_id, jg_error_t *err)
{
    (void)err;
    fake_state_t *st = impl(b)->st;
    st->cleanups++;
    st->last_cleanup = group_id;
    if (!st->slow_cleanup)
        fake_backend_cleaned(b, group_id);
    return 0;
}

static int fake_sweep(jg_backend_t *b, const int64_t *live, size_t n, jg_error_t *err)
{
    (void)live, (void)err;
    fake_state_t *st = impl(b)->st;
    st->sweeps++;
    st->last_sweep_live = n;
    return 0;
}

static const char *fake_warning(jg_backend_t *b)
{
    return impl(b)->st->warning;
}

static const jg_capacity_t *fake_capacity(jg_backend_t *b)
{
    return impl(b)->st->capacity;
}

static const char *fake_notes(jg_backend_t *b)
{
    (void)b;
    return "scripted: nothing runs";
}

static void fake_destroy(jg_backend_t *b)
{
    fake_t *f = impl(b);
    if (f->timer)
        jg_loop_cancel_timer(f->loop, f->timer);
    while (f->head) {
        queued_t *q = f->head;
        f->head = q->next;
        free(q->reason);
        free(q->data);
        free(q);
    }
    free(b->name);
    free(f);
}

static const jg_backend_ops_t fake_ops = {
    .kind = "fake",
    .fit = fake_fit,
    .launch = fake_launch,
    .release = fake_release,
    .stop = fake_stop,
    .reattach = fake_reattach,
    .cleanup = fake_cleanup,
    .sweep = fake_sweep,
    .warning = fake_warning,
    .capacity = fake_capacity,
    .notes = fake_notes,
    .destroy = fake_destroy,
};

jg_backend_t *fake_backend_create(const char *name, fake_state_t *st, jg_loop_t *loop)
{
    fake_t *f = calloc(1, sizeof *f);
    f->ops = fake_ops;
    f->ops.volumes_in_infra = st->volumes_in_infra;
    f->base.ops = &f->ops;
    f->base.name = strdup(name);
    f->base.impl = f;
    f->st = st;
    f->loop = loop;
    return &f->base;
}
