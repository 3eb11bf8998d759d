/* backends/local/gpus.c - the GPU pool: the host's GPUs by index, handed to nodes.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

jg_gpu_pool_t *jg_gpu_pool_create(void)
{
    return jg_xcalloc(1, sizeof(jg_gpu_pool_t));
}

void jg_gpu_pool_destroy(jg_gpu_pool_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].name);
    free(p->v);
    free(p);
}

size_t jg_gpu_pool_parse(jg_gpu_pool_t *p, const char *csv)
{
    size_t added = 0;
    for (const char *line = csv; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t l = nl ? (size_t)(nl - line) : strlen(line);
        char buf[256], name[64];
        char *end;
        if (l < sizeof buf) {
            memcpy(buf, line, l);
            buf[l] = '\0';
            errno = 0;
            long index = strtol(buf, &end, 10);
            bool dup = false;
            for (size_t i = 0; i < p->n; i++)
                dup = dup || p->v[i].index == index;
            if (end != buf && *end == ',' && errno == 0 && index >= 0 && index <= INT_MAX && !dup) {
                jg_capacity_gpu_name(end + 1, name, sizeof name);
                if (name[0]) {
                    size_t at = p->n;
                    while (at > 0 && p->v[at - 1].index > index)
                        at--;
                    p->v = jg_xrealloc(p->v, (p->n + 1) * sizeof *p->v);
                    memmove(p->v + at + 1, p->v + at, (p->n - at) * sizeof *p->v);
                    p->v[at] = (gpu_t){.name = jg_xstrdup(name), .index = (int)index};
                    p->n++;
                    added++;
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return added;
}

size_t jg_gpu_pool_count(const jg_gpu_pool_t *p, const char *name, bool free_only)
{
    size_t c = 0;
    for (size_t i = 0; p && i < p->n; i++)
        if ((!name || strcasecmp(p->v[i].name, name) == 0) && !(free_only && p->v[i].used))
            c++;
    return c;
}

int jg_gpu_pool_take(jg_gpu_pool_t *p, const char *name, int k, int *out)
{
    if (!p || !name || k < 0 || jg_gpu_pool_count(p, name, true) < (size_t)k)
        return -1;
    int got = 0;
    for (size_t i = 0; i < p->n && got < k; i++) {
        if (!p->v[i].used && strcasecmp(p->v[i].name, name) == 0) {
            p->v[i].used = true;
            out[got++] = p->v[i].index;
        }
    }
    return 0;
}

int jg_gpu_pool_claim(jg_gpu_pool_t *p, int index)
{
    for (size_t i = 0; p && i < p->n; i++) {
        if (p->v[i].index == index) {
            if (p->v[i].used)
                return -1;
            p->v[i].used = true;
            return 0;
        }
    }
    return -1;
}

void jg_gpu_pool_release(jg_gpu_pool_t *p, const int *idx, size_t n)
{
    for (size_t k = 0; p && k < n; k++)
        for (size_t i = 0; i < p->n; i++)
            if (p->v[i].index == idx[k])
                p->v[i].used = false;
}

/* Blocking (reads the child's output, waits for it): used once, at create,
 * before the loop serves anyone.
 * Runs argv (no shell) and returns what it printed on stdout (at most 64 KiB;
 * caller frees), or NULL if it could not run or did not exit 0. */
static char *capture(char *const argv[])
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        dup2(fds[1], STDOUT_FILENO);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 65536, len = 0;
    char *out = jg_xmalloc(cap + 1);
    for (;;) {
        ssize_t r = read(fds[0], out + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == cap)
            break;
    }
    close(fds[0]);
    out[len] = '\0';
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* The host's GPUs by index, from nvidia-smi when there is one. */
void detect_gpus(local_t *b)
{
    b->gpus = jg_gpu_pool_create();
    char *smi = resolve_exec("nvidia-smi");
    if (!smi && access("/usr/bin/nvidia-smi", X_OK) == 0)
        smi = jg_xstrdup("/usr/bin/nvidia-smi");
    if (!smi) {
        snprintf(b->gpus_why, sizeof b->gpus_why, "nvidia-smi not found");
        return;
    }
    char *argv[] = {smi, "--query-gpu=index,name", "--format=csv,noheader", NULL};
    char *out = capture(argv);
    if (out && jg_gpu_pool_parse(b->gpus, out) > 0)
        b->gpus_known = true;
    else
        snprintf(b->gpus_why, sizeof b->gpus_why, "%s listed no GPU", smi);
    free(out);
    free(smi);
}

/* The capacity offers the GPUs the pool holds, by type. */
void add_pool_to_capacity(local_t *b)
{
    for (size_t i = 0; i < b->gpus->n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcasecmp(b->gpus->v[k].name, b->gpus->v[i].name) == 0;
        if (!seen)
            jg_capacity_add_accel(&b->capacity, b->gpus->v[i].name,
                                  (int)jg_gpu_pool_count(b->gpus, b->gpus->v[i].name, false));
    }
}

/* The node's GPUs go back to the pool (its attempt ended, or was replaced). */
void node_put_gpus(node_t *n)
{
    jg_gpu_pool_release(n->b->gpus, n->gpus, n->n_gpus);
    free(n->gpus);
    n->gpus = NULL;
    n->n_gpus = 0;
}

/* "0,1,3" into buf. */
void format_indices(const int *idx, size_t n, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%d", i ? "," : "", idx[i]);
}
