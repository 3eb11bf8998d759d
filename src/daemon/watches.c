/* watches.c - `jgsched show --watch`: a fresh group snapshot pushed to each
 * watching client once per loop turn in which its group changed, so a burst
 * of node events costs one message, not one per event.
 *
 * sched reports changed groups (jgd_watch_group_changed); the prepare hook
 * (daemon.c), after the scheduler's pass, pushes them.  A watched group's
 * parsed spec is kept from the watch's first reply until no one watches the
 * group (it ends, or its watchers close): the stored spec never changes, so
 * a change costs the store reads of the group's rows and no parse.
 */
#include <stdlib.h>

#include "daemon_int.h"

/* One watched group, shared by the connections that watch it. */
struct jgd_watch {
    int64_t group_id;
    jgd_spec_view_t spec;
    int refs;                   /* watching connections, and a push under way */
    jgd_watch_t *next;
};

static jgd_watch_t *watch_find(jg_daemon_t *d, int64_t id)
{
    for (jgd_watch_t *w = d->watches; w; w = w->next)
        if (w->group_id == id)
            return w;
    return NULL;
}

static void watch_put(jg_daemon_t *d, jgd_watch_t *w)
{
    if (--w->refs > 0)
        return;
    for (jgd_watch_t **pw = &d->watches; *pw; pw = &(*pw)->next) {
        if (*pw == w) {
            *pw = w->next;
            break;
        }
    }
    jgd_spec_view_clear(&w->spec);
    free(w);
}

void jgd_watch_stop(jgd_conn_t *c)
{
    if (!c->watch)
        return;
    jgd_watch_t *w = c->watch;
    c->watch = NULL;
    watch_put(c->daemon, w);
}

void jgd_watch_start(jgd_conn_t *c, int64_t id, jgd_spec_view_t *spec)
{
    jg_daemon_t *d = c->daemon;
    jgd_watch_stop(c);
    jgd_watch_t *w = watch_find(d, id);
    if (!w) {
        w = jg_xcalloc(1, sizeof *w);
        w->group_id = id;
        w->spec = *spec;
        *spec = (jgd_spec_view_t){0};
        w->next = d->watches;
        d->watches = w;
    }
    w->refs++;
    c->watch = w;
}

void jgd_watch_group_changed(void *daemon, int64_t id)
{
    jg_daemon_t *d = daemon;
    for (size_t i = 0; i < d->n_dirty; i++)
        if (d->dirty[i] == id)
            return;
    if (d->n_dirty == d->cap_dirty) {
        d->cap_dirty = d->cap_dirty ? d->cap_dirty * 2 : 64;
        d->dirty = jg_xrealloc(d->dirty, d->cap_dirty * sizeof *d->dirty);
    }
    d->dirty[d->n_dirty++] = id;
}

/* Sends group w's snapshot to each of its watchers; a watcher whose group
 * ended stops watching after this last snapshot. */
static void push_one(jg_daemon_t *d, jgd_watch_t *w)
{
    jg_error_t err;
    json_t *group = jgd_view_group_detail(d->store, w->group_id, false, &w->spec, &err);
    if (!group)
        return;
    const char *state = json_string_value(json_object_get(group, "state"));
    jg_state_t st;
    bool ended = state && jg_state_parse(state, &st) == 0 && jg_state_is_terminal(st);
    jgd_conn_t *next;
    for (jgd_conn_t *c = d->conns; c; c = next) {
        next = c->next;     /* sending may close c, never another connection */
        if (c->watch != w)
            continue;
        if (ended)
            jgd_watch_stop(c);
        jgd_conn_send(c, json_pack("{s:b, s:O}", "ok", 1, "group", group));
    }
    json_decref(group);
}

void jgd_watch_push(jg_daemon_t *d)
{
    for (size_t i = 0; i < d->n_dirty; i++) {
        jgd_watch_t *w = watch_find(d, d->dirty[i]);
        if (!w)
            continue;
        w->refs++;          /* held while its watchers stop or close */
        push_one(d, w);
        watch_put(d, w);
    }
    d->n_dirty = 0;
}

void jgd_watch_free_all(jg_daemon_t *d)
{
    while (d->watches) {        /* only left if connections were not closed first */
        jgd_watch_t *w = d->watches;
        d->watches = w->next;
        jgd_spec_view_clear(&w->spec);
        free(w);
    }
    free(d->dirty);
    d->dirty = NULL;
    d->n_dirty = d->cap_dirty = 0;
}
