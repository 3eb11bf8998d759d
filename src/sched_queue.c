/* sched_queue.c - the indexes that keep the scheduler's cost per submit and
 * per event independent of how many groups are active.
 *
 * Three small structures, private to the sched module:
 *  - the id index: active groups by id (chained hash, doubled as it fills),
 *    so a backend event, a cancel or a record finds its group at once
 *    instead of walking the active list;
 *  - user records: per user with an active group, what their admitted groups
 *    hold (the per-user limits and priority()'s usage argument, kept up to
 *    date as groups are admitted and give their resources back) and the list
 *    of their queued groups;
 *  - the parked set of each user at their running_groups limit: their
 *    pending groups off the queues, in a treap of the same kind keyed by
 *    (backend, priority key, id), so the best one of each backend comes
 *    back into its queue in O(log n) when the user may run one more;
 *  - the ranked queue of each backend: its pending groups ordered by
 *    (priority key, id) in a treap (a binary search tree kept balanced by
 *    random heap priorities), so inserting, removing and re-ranking a group
 *    cost O(log n) and an admission pass starts at the head and stops at the
 *    first group that does not fit.  A treap needs no rebalancing cases
 *    beyond one rotation, which keeps this file short.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sched_int.h"

void jg_sched_text_set(char **dst, const char *src)
{
    char *copy = src && *src ? jg_xstrdup(src) : NULL;
    free(*dst);
    *dst = copy;
}

/* ------------------------------------------------------------- id index */

static size_t bucket_of(const jg_sched_t *s, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (s->n_buckets - 1);
}

static void index_grow(jg_sched_t *s)
{
    size_t n = s->n_buckets ? s->n_buckets * 2 : 1024;
    group_rt_t **old = s->by_id;
    size_t n_old = s->n_buckets;
    s->by_id = jg_xcalloc(n, sizeof *s->by_id);
    s->n_buckets = n;
    for (size_t i = 0; i < n_old; i++) {
        for (group_rt_t *g = old[i], *next; g; g = next) {
            next = g->id_next;
            size_t b = bucket_of(s, g->id);
            g->id_next = s->by_id[b];
            s->by_id[b] = g;
        }
    }
    free(old);
}

void jg_sched_index_add(jg_sched_t *s, group_rt_t *g)
{
    if (s->n_active + 1 > s->n_buckets)     /* load factor at most 1 */
        index_grow(s);
    size_t b = bucket_of(s, g->id);
    g->id_next = s->by_id[b];
    s->by_id[b] = g;
}

void jg_sched_index_remove(jg_sched_t *s, group_rt_t *g)
{
    if (!s->n_buckets)
        return;
    for (group_rt_t **pp = &s->by_id[bucket_of(s, g->id)]; *pp; pp = &(*pp)->id_next) {
        if (*pp == g) {
            *pp = g->id_next;
            g->id_next = NULL;
            return;
        }
    }
}

group_rt_t *jg_sched_find(const jg_sched_t *s, int64_t id)
{
    if (!s->n_buckets)
        return NULL;
    for (group_rt_t *g = s->by_id[bucket_of(s, id)]; g; g = g->id_next)
        if (g->id == id)
            return g;
    return NULL;
}

void jg_sched_index_free(jg_sched_t *s)
{
    free(s->by_id);
    s->by_id = NULL;
    s->n_buckets = 0;
    for (size_t i = 0; i < s->n_users; i++) {
        free(s->users[i]->name);
        free(s->users[i]->limit_why);
        free(s->users[i]);
    }
    free(s->users);
    s->users = NULL;
    s->n_users = 0;
    free(s->revisit_users);
    s->revisit_users = NULL;
    s->n_revisit_users = 0;
}

/* ---------------------------------------------------------- user records */

/* A linear search: a site has few users with active groups compared with its
 * groups, and this runs once per submit, not per group per pass. */
user_rec_t *jg_sched_user_ref(jg_sched_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_users; i++) {
        if (strcmp(s->users[i]->name, name) == 0) {
            s->users[i]->refs++;
            return s->users[i];
        }
    }
    user_rec_t *u = jg_xcalloc(1, sizeof *u);
    u->name = jg_xstrdup(name);
    u->refs = 1;
    s->users = jg_xrealloc(s->users, (s->n_users + 1) * sizeof *s->users);
    s->users[s->n_users++] = u;
    return u;
}

void jg_sched_user_unref(jg_sched_t *s, user_rec_t *u)
{
    if (!u || --u->refs > 0)
        return;
    for (size_t i = 0; u->revisit_due && i < s->n_revisit_users; i++) {
        if (s->revisit_users[i] == u) {
            s->revisit_users[i] = s->revisit_users[--s->n_revisit_users];
            break;
        }
    }
    free(u->limit_why);
    for (size_t i = 0; i < s->n_users; i++) {
        if (s->users[i] == u) {
            s->users[i] = s->users[--s->n_users];
            break;
        }
    }
    free(u->name);
    free(u);
}

/* ---------------------------------------------------------- ranked queue */

int jg_rq_cmp(const group_rt_t *a, const group_rt_t *b)
{
    if (a->prio_key != b->prio_key)
        return a->prio_key < b->prio_key ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* xorshift32: the heap priorities need only be spread, not secret. */
static uint32_t rq_random(void)
{
    static uint32_t x = 2463534242u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

/* Lifts x above its parent, keeping the in-order sequence. */
static void rotate_up(group_rt_t **root, group_rt_t *x)
{
    group_rt_t *p = x->rq_parent, *gp = p->rq_parent;
    if (p->rq_left == x) {
        p->rq_left = x->rq_right;
        if (x->rq_right)
            x->rq_right->rq_parent = p;
        x->rq_right = p;
    } else {
        p->rq_right = x->rq_left;
        if (x->rq_left)
            x->rq_left->rq_parent = p;
        x->rq_left = p;
    }
    p->rq_parent = x;
    x->rq_parent = gp;
    if (!gp)
        *root = x;
    else if (gp->rq_left == p)
        gp->rq_left = x;
    else
        gp->rq_right = x;
}

/* The treap under *root ordered by cmp: a ranked queue or a user's parked set
 * (a group is in one at most; they share its links). */
static void treap_insert(group_rt_t **root, group_rt_t *g,
                         int (*cmp)(const group_rt_t *, const group_rt_t *))
{
    g->rq_left = g->rq_right = g->rq_parent = NULL;
    g->rq_heap = rq_random();
    group_rt_t **link = root, *parent = NULL;
    while (*link) {
        parent = *link;
        link = cmp(g, parent) < 0 ? &parent->rq_left : &parent->rq_right;
    }
    *link = g;
    g->rq_parent = parent;
    while (g->rq_parent && g->rq_parent->rq_heap < g->rq_heap)
        rotate_up(root, g);
}

static void treap_remove(group_rt_t **root, group_rt_t *g)
{
    /* Rotate g down to a leaf, the child with the higher heap priority up. */
    while (g->rq_left || g->rq_right) {
        group_rt_t *c = !g->rq_left                        ? g->rq_right
                        : !g->rq_right                     ? g->rq_left
                        : g->rq_left->rq_heap > g->rq_right->rq_heap ? g->rq_left
                                                                      : g->rq_right;
        rotate_up(root, c);
    }
    if (!g->rq_parent)
        *root = NULL;
    else if (g->rq_parent->rq_left == g)
        g->rq_parent->rq_left = NULL;
    else
        g->rq_parent->rq_right = NULL;
    g->rq_parent = NULL;
}

void jg_rq_insert(backend_slot_t *slot, group_rt_t *g)
{
    treap_insert(&slot->queue, g, jg_rq_cmp);
    slot->n_queued++;
    g->queued = true;
    user_rec_t *u = g->owner;
    g->rq_user_prev = NULL;
    g->rq_user_next = u->queued;
    if (u->queued)
        u->queued->rq_user_prev = g;
    u->queued = g;
}

void jg_rq_remove(backend_slot_t *slot, group_rt_t *g)
{
    if (!g->queued)
        return;
    treap_remove(&slot->queue, g);
    slot->n_queued--;
    g->queued = false;
    user_rec_t *u = g->owner;
    if (g->rq_user_prev)
        g->rq_user_prev->rq_user_next = g->rq_user_next;
    else
        u->queued = g->rq_user_next;
    if (g->rq_user_next)
        g->rq_user_next->rq_user_prev = g->rq_user_prev;
    g->rq_user_prev = g->rq_user_next = NULL;
}

group_rt_t *jg_rq_first(const backend_slot_t *slot)
{
    group_rt_t *g = slot->queue;
    while (g && g->rq_left)
        g = g->rq_left;
    return g;
}

group_rt_t *jg_rq_next(const group_rt_t *g)
{
    if (g->rq_right) {
        g = g->rq_right;
        while (g->rq_left)
            g = g->rq_left;
        return (group_rt_t *)g;
    }
    while (g->rq_parent && g->rq_parent->rq_right == g)
        g = g->rq_parent;
    return g->rq_parent;
}

/* ------------------------------------------------------------ parked set */

/* By backend first (any fixed order of them does), then as the queue ranks. */
static int parked_cmp(const group_rt_t *a, const group_rt_t *b)
{
    uintptr_t ba = (uintptr_t)a->backend, bb = (uintptr_t)b->backend;
    if (ba != bb)
        return ba < bb ? -1 : 1;
    return jg_rq_cmp(a, b);
}

void jg_parked_insert(user_rec_t *u, group_rt_t *g)
{
    treap_insert(&u->parked, g, parked_cmp);
    u->n_parked++;
    g->parked = true;
}

void jg_parked_remove(user_rec_t *u, group_rt_t *g)
{
    if (!g->parked)
        return;
    treap_remove(&u->parked, g);
    u->n_parked--;
    g->parked = false;
}

group_rt_t *jg_parked_first_on(const user_rec_t *u, const jg_backend_t *b)
{
    group_rt_t *best = NULL;
    for (group_rt_t *g = u->parked; g;) {
        if ((uintptr_t)g->backend < (uintptr_t)b) {
            g = g->rq_right;
        } else {
            if (g->backend == b)
                best = g;
            g = g->rq_left;
        }
    }
    return best;
}
