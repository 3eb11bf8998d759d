/* backend_local.c - the `local` backend: every node is a process tree on this host.
 *
 * A node is a directory, <state_dir>/groups/<group id>/<job>-<rank>/, and a
 * jgsched-shim process started in a session of its own that runs the node's
 * setup, waits at the barrier (a FIFO) and runs its run command (shim.c;
 * shim_protocol.h lists the files).  The shim appends every step to the
 * node's `status` file, which is the durable truth of what happened: the
 * daemon may die and come back, read the file again from the start
 * (reattach) and lose nothing.
 *
 * Run as root, the backend trusts nothing in a node directory: it belongs to
 * the node's user, and so does the shim.  Which processes are the node's
 * comes from the daemon's own records only: the fork (pid, pidfd, start
 * time), the store's handle, the root-owned <group dir>/.shims, the node's
 * cgroup.  Every signal goes through jg_proc_kill.  Files in a node directory
 * are opened by open_node_file (no link followed, no blocking open, regular
 * files only) or made fresh with O_EXCL; its tmp/ through a directory fd.
 *
 * Real-time notice without polling: ONE inotify descriptor for the backend
 * watches every node's status file (IN_MODIFY), and one pidfd per shim says
 * when it died.  On either, the node's new status lines are read from the
 * stored offset and turned into events by comparing what the file says with
 * what was already reported (so a replay after a restart and a live update
 * go through the same code).  A shim that died without recording an exit was
 * killed from outside: NODE_LOST, and whatever is left of its process group
 * is killed, since nothing supervises it any more.
 *
 * Events never reach the core from inside an operation: they are queued and
 * delivered from the loop (a zero-delay timer, or the end of the descriptor
 * callback that produced them), so sched is never re-entered from its own
 * call to launch() or reattach(), and may call any operation (but not
 * destroy) from its event callback.
 *
 * A node record lives from launch (or reattach) until its shim is seen dead;
 * a relaunch of the same node (a new attempt) adds a new record and marks the
 * old one superseded: its late lines carry the old attempt and are ignored by
 * sched.  Files are replaced by rename (a bash still reading the old script
 * keeps its inode) and the FIFO is recreated, so the old shim can never see
 * the new attempt's release.
 *
 * Networking (netns.c does the kernel work; docs/local-backend.md explains):
 * at its first launch a group gets a hub, a network namespace with a bridge
 * held by a keeper process recorded in <group dir>/net; each node's forked
 * child joins it, making the node's own network, UTS and mount namespaces
 * (address, hostname, the group's <group dir>/hosts on /etc/hosts, the node's
 * <node dir>/tmp on /tmp) before it execs the shim.  A failure there reaches
 * the backend through a close-on-exec pipe and is reported as LAUNCH_FAILED.
 * The node's namespaces live as long as its processes; the hub until
 * cleanup() kills the keeper.  A keeper that dies on its own takes the
 * group's network with it: the group's nodes are killed and reported lost.
 * Where namespaces are not possible (see jg_netns_probe) nodes share the
 * host network, which warning() and every node's log say.
 *
 * Resources (docs/local-backend.md, "Resources"):
 *  - Volumes are bind mounts made by the node's child in the node's mount
 *    namespace (netns.c).  A mount point missing on the host is made first
 *    by a child that became the node's user (host_mount_point), so root
 *    never makes a directory where the user could not, and it is left in
 *    place: another group's or instance's node may have it mounted.
 *  - Deleting: a node's work and tmp trees are moved into <state_dir>/trash
 *    and deleted there by a background child through directory descriptors,
 *    as their owner (fsutil.h): never a full path into a tree the user can
 *    change, never on the loop.
 *  - Output: each node's output.log is opened once and read on a timer into
 *    LOG events, drained before the node's end is reported (section "output
 *    streams" at the end).  cleanup() queues CLEANED, and every stop() one
 *    STOPPED once its nodes have ended.
 *  - GPUs: a jg_gpu_pool_t of the host's GPUs (nvidia-smi's index and name,
 *    read once at create).  A node takes its job's count at launch and keeps
 *    them until its final event (or its record goes); the indices are written
 *    to <node dir>/gpus so a restarted daemon takes the same ones back.
 *  - cgroups: probed once at create (a cgroup v2 mount whose controllers
 *    include cpu and memory, and a place in it we may divide); then each
 *    attempt of a node gets <instance cgroup>/g<id>-<job>-<rank>.<attempt>
 *    with cpu.max and memory.max, joined by the node's child before it execs
 *    the shim.  memory.events says whether the OOM killer struck; the cgroup
 *    is killed (cgroup.kill) and removed when the node ends and at cleanup.
 */
#include "jgsched/backend_local.h"
#include "jgsched/capacity.h"
#include "jgsched/fsutil.h"
#include "jgsched/netns.h"
#include "jgsched/nodeenv.h"
#include "jgsched/proc.h"
#include "jgsched/paths.h"

#include "shim_protocol.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLEANUP_WAIT_MS 2000        /* how long cleanup waits for killed shims to die */
#define MAX_GROUPS 256              /* supplementary groups carried to a node */
#define GROUP_NET "net"             /* <group dir>/net: "keeper <pid> <starttime>" */
#define GROUP_HOSTS "hosts"         /* <group dir>/hosts: the nodes' /etc/hosts */
#define GROUP_RESOLV "resolv.conf"  /* <group dir>/resolv.conf: theirs (with NAT) */
#define NODE_TMP "tmp"              /* <node dir>/tmp: the node's /tmp, kept across attempts */
#define GROUP_MOUNTS "mountpoints"  /* <group dir>/mountpoints: left by older versions; removed */
#define TRASH_DIR "trash"           /* <state_dir>/trash: trees being deleted (fsutil.h) */
#define GROUP_SHIMS ".shims"        /* <group dir>/.shims: the shims we started (shim_protocol.h) */
#define STATUS_MAX (1 << 20)        /* status bytes read per node attempt, at most */
#define CG_PERIOD_US 100000         /* cpu.max period */
#define MAX_GPUS_PER_NODE 64

typedef struct local local_t;
typedef struct node node_t;

/* A node's output.log as it is streamed out in LOG events (section "output
 * streams" at the end of this file). */
typedef struct {
    int fd;                     /* O_RDONLY, opened once (open_node_file); -1: not yet */
    bool refused;               /* open_node_file refused it: never tried again */
    bool resume_set;            /* reattach() said where to resume (offset) */
    int64_t offset;             /* bytes of output.log already delivered */
    int64_t attempt_start;      /* where this node's attempt starts in output.log */
} node_stream_t;

struct node {
    node_t *next;
    local_t *b;
    int64_t group_id;
    int job_index;
    int rank;
    int attempt;
    char *dir;                  /* absolute node directory */
    pid_t pid;                  /* the shim; also the node's process group */
    unsigned long long start;   /* the shim's starttime, against pid reuse */
    int pidfd;
    int wd;                     /* inotify watch of the status file, -1 if none */
    off_t offset;               /* status bytes already read */
    bool is_child;              /* launched by this process: reap it */
    int errfd;                  /* reads why the child failed before exec; -1 if none */
    char *lost_reason;          /* why we killed it (its group's network died), or NULL */
    bool superseded;            /* a later attempt of the same node exists */
    bool stopping;              /* stop() asked it to end: forced kill after grace */
    bool quiet;                 /* cleaned up: nothing more is reported */
    bool status_refused;        /* the status file was refused once (logged once) */
    bool shim_gone;             /* its shim has ended: the final event may be reported */
    /* What the status file says. */
    bool seen_started, setup_done, released, exited, cancelled;
    bool exit_in_setup;
    int exit_code, exit_signal;
    /* What was reported. */
    bool reported_setup_done, reported_final;
    int *gpus;                  /* GPU indices this attempt holds (n_gpus), or NULL */
    size_t n_gpus;
    char *cgroup;               /* the attempt's cgroup directory, or NULL (none here) */
    node_stream_t stream;       /* its output.log, read into LOG events (see the end) */
};

typedef struct {
    jg_backend_event_t ev;
    char *reason;
    char *handle;
    char *address;
    char *data;                 /* LOG: the bytes (ev.len of them) */
} queued_t;

typedef struct stop_wait stop_wait_t;

/* A group's network hub, while this backend follows its keeper. */
typedef struct gnet {
    struct gnet *next;
    local_t *b;
    int64_t group_id;
    jg_netns_hub_t hub;
} gnet_t;

typedef struct stop_timer {
    struct stop_timer *next;
    local_t *b;
    uint64_t id;
    int64_t group_id;
    int job_index;
    int rank;
} stop_timer_t;

struct local {
    jg_backend_t base;
    char *state_dir;
    char *shim_path;
    int shim_fd;                /* O_PATH: nodes exec it even where /tmp hides its path */
    jg_loop_t *loop;
    jg_backend_event_f on_event;
    void *event_ctx;
    int inotify_fd;
    node_t *nodes;
    queued_t *queue;
    size_t q_head, q_len, q_cap;
    uint64_t flush_timer;
    bool flushing;
    stop_timer_t *stops;
    jg_netns_caps_t net;        /* what nodes get: decided once, at create */
    bool nat;                   /* hubs get an uplink: nodes reach out */
    jg_netns_uplink_t uplink;
    char *nat_note;             /* outbound traffic, in a few words (for notes()) */
    char *warning;              /* NULL when nodes are fully isolated */
    gnet_t *gnets;
    jg_capacity_t capacity;     /* declared in the config, else the host's */
    jg_gpu_pool_t *gpus;        /* the host's GPUs by index (empty without nvidia-smi) */
    bool gpus_known;            /* nvidia-smi listed the host's GPUs */
    char gpus_why[128];         /* !gpus_known: why ("nvidia-smi not found") */
    char *cg_base;              /* this instance's cgroup (v2), or NULL: nodes are not limited */
    char *notes;                /* notes(): cgroups and GPUs, one line */
    jg_trash_t *trash;          /* <state_dir>/trash: users' trees go there to be deleted */
    uint64_t stream_timer;      /* reads live nodes' output (0: none armed) */
    stop_wait_t *stop_waits;    /* stop() calls whose STOPPED is not reported yet */
};

static void stream_arm(local_t *b, int64_t delay_ms);
static void stream_drain(node_t *n);
static void stream_close(node_t *n);
static void stop_waits_check(local_t *b);

static const jg_backend_ops_t local_ops;

/* ---- small helpers ------------------------------------------------------ */

static bool isolated(const local_t *b)
{
    return b->net.mode != JG_NETNS_HOST;
}

/* The address of a node, as its peers reach it: its own in its group's
 * network, or the host's loopback when nodes share the host network. */
static void node_address(const local_t *b, const jg_group_spec_t *spec, int job_index, int rank,
                         char *buf, size_t len)
{
    int index = jg_netns_node_index(spec, job_index, rank);
    if (!isolated(b) || jg_netns_node_address(index, buf, len) < 0)
        snprintf(buf, len, "127.0.0.1");
}

static char *group_dir(const local_t *b, int64_t group_id)
{
    return jg_xasprintf("%s/groups/%" PRId64, b->state_dir, group_id);
}

static char *node_dir(const local_t *b, int64_t group_id, const char *job, int rank)
{
    return jg_xasprintf("%s/groups/%" PRId64 "/%s-%d", b->state_dir, group_id, job, rank);
}

typedef struct {
    bool active;                /* run the node as another user */
    uid_t uid;
    gid_t gid;
    gid_t groups[MAX_GROUPS];
    int n_groups;
} creds_t;

static int own(const creds_t *c, const char *path, jg_error_t *err)
{
    if (c->active && lchown(path, c->uid, c->gid) < 0)
        return jg_errprintf(err, "cannot chown %s: %s", path, strerror(errno));
    return 0;
}

/* ---- files the node's user can write -------------------------------------
 *
 * A node directory belongs to the node's user, who may put a symbolic link, a
 * FIFO or a hard link in place of any file the daemon opens there.  Every such
 * open goes through open_node_file: no link is followed, no open blocks, and
 * only a regular file with one name is accepted. */

/* Opens dir/name with flags (O_NOFOLLOW, O_NONBLOCK and O_CLOEXEC added);
 * -1 with errno (ELOOP for a link, EINVAL for what is not a regular file with
 * a single name) and a message in err.  Fills *st when given. */
static int open_node_file(const char *dir, const char *name, int flags, mode_t mode,
                          struct stat *st, jg_error_t *err)
{
    struct stat sb;
    char *path = jg_xasprintf("%s/%s", dir, name);
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
    int e = errno;
    if (fd >= 0 && (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1)) {
        close(fd);
        fd = -1;
        e = EINVAL;
    }
    if (fd < 0 && e == EINVAL)
        jg_errprintf(err, "refusing %s: it is not a regular file of its own (a FIFO, device "
                     "or hard link was put there)", path);
    else if (fd < 0 && e == ELOOP)
        jg_errprintf(err, "refusing %s: it is a symbolic link", path);
    else if (fd < 0)
        jg_errprintf(err, "cannot open %s: %s", path, strerror(e));
    free(path);
    if (fd >= 0 && st)
        *st = sb;
    errno = e;
    return fd;
}

/* Opens a record of our own (a file the daemon wrote in a directory only it
 * may write): refused unless it is a regular file we own that nobody else
 * may write, so a record is never something a user put there. */
static int open_own_record(const char *path, int flags, jg_error_t *err)
{
    struct stat st;
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    int e = errno;
    if (fd < 0)
        jg_errprintf(err, "cannot open %s: %s", path, strerror(e));
    else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
             st.st_nlink != 1 || (st.st_mode & 022)) {
        close(fd);
        fd = -1;
        e = EPERM;
        jg_errprintf(err, "refusing %s: not a file only the daemon may write", path);
    }
    errno = e;
    return fd;
}

#define ATTEMPTS_FILE_MAX 16384     /* what we read of a node's "attempts" file */

/* One line of a node's "attempts" file: where an attempt's output starts. */
typedef struct {
    int attempt;
    int64_t offset;
} attempt_start_t;

/* Appends "<attempt> <offset>" to the node's attempts file, so `jgsched logs`
 * can mark where each attempt's output starts.  Only decoration: a failure is
 * logged, never fatal.  The node directory belongs to the node's user, hence
 * open_node_file. */
static void note_attempt_start(const char *dir, int attempt, int64_t offset)
{
    jg_error_t err;
    int fd = open_node_file(dir, JG_SHIM_ATTEMPTS, O_WRONLY | O_CREAT | O_APPEND, 0644, NULL,
                            &err);
    if (fd < 0) {
        jg_log("warn", "cannot record attempt %d: %s", attempt, err.text);
        return;
    }
    char line[64];
    int len = snprintf(line, sizeof line, "%d %lld\n", attempt, (long long)offset);
    (void)!write(fd, line, (size_t)len);
    close(fd);
}

/* Writes dir/name through a temporary file and rename(), so a process still
 * reading the previous version keeps it whole. */
static int write_file(const creds_t *c, const char *dir, const char *name, const char *data,
                      size_t len, mode_t mode, jg_error_t *err)
{
    int rc = -1;
    char *path = jg_xasprintf("%s/%s", dir, name);
    char *tmp = jg_xasprintf("%s/.%s.tmp", dir, name);
    int fd = -1;
    /* A fresh file (O_EXCL): whatever the user left at the temporary name,
     * a link or a FIFO, is removed, never opened. */
    if (unlink(tmp) < 0 && errno != ENOENT) {
        jg_errprintf(err, "cannot remove %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        jg_errprintf(err, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            jg_errprintf(err, "cannot write %s: %s", tmp, strerror(errno));
            goto done;
        }
        off += (size_t)n;
    }
    if (fchmod(fd, mode) < 0 || (c->active && fchown(fd, c->uid, c->gid) < 0)) {
        jg_errprintf(err, "cannot set owner or mode of %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (close(fd) < 0) {
        fd = -1;
        jg_errprintf(err, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        jg_errprintf(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}

/* ---- GPUs --------------------------------------------------------------- */

typedef struct {
    char *name;
    int index;
    bool used;
} gpu_t;

struct jg_gpu_pool {
    gpu_t *v;                   /* sorted by index */
    size_t n;
};

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

/* Runs argv (no shell) and returns what it printed on stdout (at most 64 KiB;
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

static char *resolve_exec(const char *name);

/* The host's GPUs by index, from nvidia-smi when there is one. */
static void detect_gpus(local_t *b)
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
static void add_pool_to_capacity(local_t *b)
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
static void node_put_gpus(node_t *n)
{
    jg_gpu_pool_release(n->b->gpus, n->gpus, n->n_gpus);
    free(n->gpus);
    n->gpus = NULL;
    n->n_gpus = 0;
}

/* "0,1,3" into buf. */
static void format_indices(const int *idx, size_t n, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%d", i ? "," : "", idx[i]);
}

/* ---- cgroups ------------------------------------------------------------ */

/* Reads a small file into buf (NUL-terminated); -1 if it cannot be read. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, len - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == len - 1)
            break;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

/* Writes text to an existing file (a cgroup knob) in one write(); 0 or -1 + errno. */
static int write_knob(const char *dir, const char *name, const char *text)
{
    char *path = jg_xasprintf("%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return -1;
    ssize_t r = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return r == (ssize_t)strlen(text) ? 0 : -1;
}

/* Whether a space-separated controller list names both cpu and memory. */
static bool cpu_and_memory(const char *list)
{
    bool cpu = false, mem = false;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, " \n");
        cpu = cpu || (n == 3 && strncmp(p, "cpu", 3) == 0);
        mem = mem || (n == 6 && strncmp(p, "memory", 6) == 0);
        p += n;
        p += strspn(p, " \n");
    }
    return cpu && mem;
}

/* Makes sure cgroup dir lets its children have cpu and memory. */
static int enable_controllers(const char *dir, char *why, size_t len)
{
    char *path = jg_xasprintf("%s/cgroup.subtree_control", dir);
    char have[256];
    bool ok = read_small(path, have, sizeof have) >= 0 && cpu_and_memory(have);
    free(path);
    if (ok || write_knob(dir, "cgroup.subtree_control", "+cpu +memory") == 0)
        return 0;
    int e = errno;
    snprintf(why, len, "cannot enable the cpu and memory controllers in %s: %s", dir,
             strerror(e));
    errno = e;
    return -1;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Finds where this instance may give nodes cgroups of their own: a cgroup v2
 * mount whose controllers include cpu and memory, and a cgroup we may divide
 * (the root of the tree we see, or our own if no other process is in it: we
 * then move into a leaf of it, as a delegated service must).  Sets
 * b->cg_base, or says why not. */
static int cg_probe(local_t *b, char *why, size_t len)
{
    char mnt[PATH_MAX] = "", root[PATH_MAX] = "/", own[PATH_MAX] = "", line[4096], list[256];
    char *dir = NULL, *parent = NULL, *leaf = NULL, *inst = NULL;
    bool v1_memory = false;
    int rc = -1;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    while (f && fgets(line, sizeof line, f)) {
        char *dash = strstr(line, " - "), fstype[32], mp[PATH_MAX], opts[1024];
        if (!dash || sscanf(dash + 3, "%31s %*s %1023s", fstype, opts) != 2)
            continue;
        if (strcmp(fstype, "cgroup") == 0 && strstr(opts, "memory"))
            v1_memory = true;
        if (strcmp(fstype, "cgroup2") == 0 && !mnt[0] &&
            sscanf(line, "%*s %*s %*s %4095s %4095s", root, mp) == 2)
            snprintf(mnt, sizeof mnt, "%s", mp);
    }
    if (f)
        fclose(f);
    f = fopen("/proc/self/cgroup", "re");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "0::", 3) == 0)
            snprintf(own, sizeof own, "%.*s", (int)strcspn(line + 3, "\n"), line + 3);
    if (f)
        fclose(f);
    if (!mnt[0] || !own[0]) {
        snprintf(why, len, "no cgroup v2 file system is mounted");
        goto done;
    }
    /* A mount of a subtree (root "/a/b") shows our cgroup "/a/b/c" as "/c". */
    size_t rl = strlen(root);
    if (strcmp(root, "/") != 0 && strncmp(own, root, rl) == 0 && (own[rl] == '/' || !own[rl]))
        memmove(own, own[rl] ? own + rl : "/", strlen(own[rl] ? own + rl : "/") + 1);
    dir = strcmp(own, "/") == 0 ? jg_xstrdup(mnt) : jg_xasprintf("%s%s", mnt, own);
    char *path = jg_xasprintf("%s/cgroup.controllers", dir);
    ssize_t got = read_small(path, list, sizeof list);
    free(path);
    if (got < 0 || !cpu_and_memory(list)) {
        size_t l = strcspn(list, "\n");
        snprintf(why, len, "cgroup v2 at %s has no cpu and memory controllers%s%.*s%s%s", dir,
                 got > 0 && l ? " (only: " : "", (int)(got > 0 ? l : 0), list,
                 got > 0 && l ? ")" : "",
                 v1_memory ? "; they belong to the cgroup v1 hierarchy here" : "");
        goto done;
    }
    /* Only a cgroup without processes of its own (or the real root) may hand
     * controllers to children: if ours has some, and they are only us, we
     * move into a leaf of it, as a delegated service must. */
    parent = jg_xstrdup(dir);
    if (enable_controllers(parent, why, len) < 0) {
        if (errno != EBUSY)
            goto done;
        char procs[64];
        path = jg_xasprintf("%s/cgroup.procs", dir);
        got = read_small(path, procs, sizeof procs);
        free(path);
        if (got <= 0 || atol(procs) != (long)getpid() || strchr(procs, '\n') != procs + got - 1) {
            snprintf(why, len, "the daemon's cgroup %s holds other processes too, so it cannot "
                     "be divided (run jgschedd in a cgroup of its own, e.g. a service with "
                     "Delegate=yes)", own);
            goto done;
        }
        leaf = jg_xasprintf("%s/jgschedd", dir);
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        if ((mkdir(leaf, 0755) < 0 && errno != EEXIST) ||
            write_knob(leaf, "cgroup.procs", pid) < 0) {
            snprintf(why, len, "cannot move the daemon into %s: %s", leaf, strerror(errno));
            goto done;
        }
        if (enable_controllers(parent, why, len) < 0)
            goto done;
    }
    inst = jg_xasprintf("%s/jgsched-%016llx", parent, (unsigned long long)fnv1a(b->state_dir));
    if (mkdir(inst, 0755) < 0 && errno != EEXIST) {
        snprintf(why, len, "cannot create %s: %s", inst, strerror(errno));
        goto done;
    }
    if (enable_controllers(inst, why, len) < 0)
        goto done;
    b->cg_base = inst;
    inst = NULL;
    rc = 0;
done:
    free(dir);
    free(parent);
    free(leaf);
    free(inst);
    return rc;
}

/* An attempt's cgroup: g<group>-<job>-<rank>.<attempt>, named after the
 * node directory (<group dir>/<job>-<rank>), at launch and at reattach alike. */
static char *cg_node_path(const local_t *b, int64_t group_id, const char *node_dir, int attempt)
{
    const char *slash = strrchr(node_dir, '/');
    return jg_xasprintf("%s/g%" PRId64 "-%s.%d", b->cg_base, group_id,
                        slash ? slash + 1 : node_dir, attempt);
}

/* The attempt's cgroup, limited to its job's cpus and memory. */
static int cg_node_create(const char *cg, const jg_job_spec_t *job, jg_error_t *err)
{
    char text[64];
    if (mkdir(cg, 0755) < 0 && errno != EEXIST)
        return jg_errprintf(err, "cannot create the node's cgroup %s: %s", cg, strerror(errno));
    double cpus = jg_node_cpus(job), mem = jg_node_memory_gb(job);
    if (cpus > 0) {
        long long quota = (long long)(cpus * CG_PERIOD_US + 0.5);
        snprintf(text, sizeof text, "%lld %d", quota < 1000 ? 1000 : quota, CG_PERIOD_US);
        if (write_knob(cg, "cpu.max", text) < 0)
            return jg_errprintf(err, "cannot set cpu.max of %s to \"%s\": %s", cg, text,
                                strerror(errno));
    }
    if (mem > 0) {
        snprintf(text, sizeof text, "%lld", (long long)(mem * 1073741824.0 + 0.5));
        if (write_knob(cg, "memory.max", text) < 0)
            return jg_errprintf(err, "cannot set memory.max of %s to %s: %s", cg, text,
                                strerror(errno));
        (void)write_knob(cg, "memory.swap.max", "0");   /* a limit, not a reason to swap */
    }
    return 0;
}

/* Kills every process of a node's cgroup and removes it once empty, waiting
 * at most wait_ms; best effort (cleanup() tries again). */
static void cg_node_remove(const char *cg, int wait_ms)
{
    struct stat st;
    if (stat(cg, &st) < 0)
        return;
    (void)write_knob(cg, "cgroup.kill", "1");
    int64_t deadline = jg_now_mono_ms() + wait_ms;
    while (rmdir(cg) < 0 && errno == EBUSY && jg_now_mono_ms() < deadline)
        usleep(5000);
}

/* "killed by the OOM killer (memory.max 8GB)" when the node's cgroup saw an
 * OOM kill; "" otherwise. */
static void oom_note(const node_t *n, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!n->cgroup)
        return;
    char text[512], *path = jg_xasprintf("%s/memory.events", n->cgroup);
    ssize_t got = read_small(path, text, sizeof text);
    free(path);
    const char *p = got > 0 ? strstr(text, "oom_kill ") : NULL;
    if (!p || strtoull(p + 9, NULL, 10) == 0)
        return;
    path = jg_xasprintf("%s/memory.max", n->cgroup);
    got = read_small(path, text, sizeof text);
    free(path);
    unsigned long long bytes = got > 0 ? strtoull(text, NULL, 10) : 0;
    if (bytes)
        snprintf(buf, len, "killed by the OOM killer (memory.max %gGB)",
                 (double)bytes / 1073741824.0);
    else
        snprintf(buf, len, "killed by the OOM killer");
}

/* Removes the cgroups of a group's nodes (killing what is left in them). */
static void cg_group_remove(const local_t *b, int64_t group_id, int wait_ms)
{
    if (!b->cg_base)
        return;
    DIR *d = opendir(b->cg_base);
    if (!d)
        return;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "g%" PRId64 "-", group_id);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char *cg = jg_xasprintf("%s/%s", b->cg_base, de->d_name);
        cg_node_remove(cg, wait_ms);
        free(cg);
    }
    closedir(d);
}

/* Whether some node cgroup of the group is left. */
static bool cg_group_exists(const local_t *b, int64_t group_id)
{
    if (!b->cg_base)
        return false;
    DIR *d = opendir(b->cg_base);
    if (!d)
        return false;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "g%" PRId64 "-", group_id);
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)))
        found = strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return found;
}

/* ---- volumes ------------------------------------------------------------ */

/* Mount points that would let a node's user change what privileged programs
 * read (a root daemon mounts them): refused. */
static const char *const system_dirs[] = {
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot",
    "/dev", "/proc", "/sys", "/run", "/var", "/root",
};

/* Checks a mount path: absolute, no empty, "." or ".." component, not / nor
 * a system directory (or below one). */
static int check_mount_path(const char *path, char *why, size_t len)
{
    if (!path || path[0] != '/') {
        snprintf(why, len, "is not an absolute path");
        return -1;
    }
    for (const char *p = path; *p;) {
        p++;
        size_t n = strcspn(p, "/");
        if ((n == 0 && p[0] == '/') || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.')) {
            snprintf(why, len, "has an empty, \".\" or \"..\" component");
            return -1;
        }
        p += n;
    }
    if (strspn(path, "/") == strlen(path)) {
        snprintf(why, len, "is the root directory");
        return -1;
    }
    for (size_t i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++) {
        size_t l = strlen(system_dirs[i]);
        if (strncmp(path, system_dirs[i], l) == 0 && (path[l] == '\0' || path[l] == '/')) {
            snprintf(why, len, "is under the system directory %s", system_dirs[i]);
            return -1;
        }
    }
    return 0;
}

/* Makes sure mount point `target` exists on the host as the node's user would:
 * a child that became the user walks the path without following links and
 * makes what is missing (0755, the user's).  So root makes nothing in a
 * directory of the host, and a path the user could not make (another user's
 * home, /mnt when /mnt is root's) is refused.  Under /tmp nothing is made
 * here: the node's own /tmp gets it (netns.c).  What is made is never
 * removed: a node of another group or instance may have its volume mounted
 * there, and removing the directory would unmount it from under that node
 * (rmdir detaches a mount point in every other mount namespace). */
static int host_mount_point(const creds_t *c, const char *user, const char *volume,
                            const char *target, jg_error_t *err)
{
    if (strncmp(target, "/tmp/", 5) == 0)
        return 0;
    pid_t pid = fork();
    if (pid < 0)
        return jg_errprintf(err, "volume %s on %s: cannot fork: %s", volume, target,
                            strerror(errno));
    if (pid == 0) {
        /* Exit status: 0 ready; errno not reaching it; 128 + errno not making it. */
        if (c->active && (setgroups((size_t)c->n_groups, c->groups) < 0 || setgid(c->gid) < 0 ||
                          setuid(c->uid) < 0))
            _exit(errno > 0 && errno < 128 ? errno : EIO);
        int fd = jg_fs_open_dir(target, false, (uid_t)-1, (gid_t)-1);
        if (fd < 0 && errno != ENOENT)
            _exit(errno > 0 && errno < 128 ? errno : EIO);
        if (fd < 0 && (fd = jg_fs_open_dir(target, true, (uid_t)-1, (gid_t)-1)) < 0)
            _exit(128 + (errno > 0 && errno < 128 ? errno : EIO));
        _exit(0);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + EIO;
    if (code == 0)
        return 0;
    int e = code & 127;
    const char *why = e == ELOOP ? "a component is a symbolic link" : strerror(e);
    char who[80];
    if (c->active)
        snprintf(who, sizeof who, "%s", user ? user : "the group's user");
    else
        snprintf(who, sizeof who, "uid %d", (int)geteuid());
    if (code & 128)
        return jg_errprintf(err, "volume %s: the mount path %s does not exist and %s may not "
                            "create it (%s); create it first, or mount under a directory %s "
                            "may write", volume, target, who, why, who);
    return jg_errprintf(err, "volume %s: the mount path %s cannot be reached by %s (%s)", volume,
                        target, who, why);
}

/* The binds of one node: every volume its job names, each checked.
 * *out points into req and job (borrowed); caller frees the array. */
static int plan_volumes(const local_t *b, const jg_launch_t *req, const jg_job_spec_t *job,
                        const creds_t *creds, jg_netns_bind_t **out, jg_error_t *err)
{
    *out = NULL;
    if (job->n_volumes == 0)
        return 0;
    if (!b->net.own_mounts)
        return jg_errprintf(err, "volume %s on %s: nodes share the host's mounts here (no "
                            "mount namespace per node: %s), so a volume cannot be mounted "
                            "in a node", job->volumes[0].value, job->volumes[0].key,
                            b->net.why[0] ? b->net.why : "isolation is off");
    jg_netns_bind_t *binds = jg_xcalloc(job->n_volumes, sizeof *binds);
    char why[128];
    for (size_t i = 0; i < job->n_volumes; i++) {
        const char *target = job->volumes[i].key, *name = job->volumes[i].value;
        const char *source = NULL;
        for (size_t k = 0; k < req->n_volumes && req->volumes; k++)
            if (req->volumes[k].key && name && strcmp(req->volumes[k].key, name) == 0)
                source = req->volumes[k].value;
        struct stat st;
        if (check_mount_path(target, why, sizeof why) < 0) {
            jg_errprintf(err, "volume %s: the mount path %s %s", name ? name : "?",
                         target ? target : "(none)", why);
            goto fail;
        }
        if (!source) {
            jg_errprintf(err, "volume %s (for %s) is not known to the daemon (create it "
                         "with `jgsched volume create %s`)", name ? name : "?", target,
                         name ? name : "NAME");
            goto fail;
        }
        if (source[0] != '/' || stat(source, &st) < 0 || !S_ISDIR(st.st_mode)) {
            jg_errprintf(err, "volume %s (for %s): its directory %s does not exist", name,
                         target, source);
            goto fail;
        }
        if (host_mount_point(creds, req->user, name, target, err) < 0)
            goto fail;
        binds[i] = (jg_netns_bind_t){.source = source, .target = target};
    }
    *out = binds;
    return 0;
fail:
    free(binds);
    return -1;
}

/* ---- events ------------------------------------------------------------- */

static void flush_events(local_t *b)
{
    if (b->flushing)
        return;
    b->flushing = true;
    while (b->q_head < b->q_len) {
        queued_t q = b->queue[b->q_head++];
        q.ev.reason = q.reason;
        q.ev.handle = q.handle;
        q.ev.address = q.address;
        q.ev.data = q.data;
        b->on_event(b->event_ctx, &q.ev);
        free(q.reason);
        free(q.handle);
        free(q.address);
        free(q.data);
    }
    b->q_head = b->q_len = 0;
    b->flushing = false;
}

static void on_flush_timer(jg_loop_t *loop, void *arg)
{
    (void)loop;
    local_t *b = arg;
    b->flush_timer = 0;
    flush_events(b);
}

/* Queues an event; it reaches the core from the loop, never from inside the
 * operation that produced it.  Returns the entry, valid until the next call,
 * for fields only some events carry (a node's address). */
static queued_t *queue_event(local_t *b, jg_backend_event_type_t type, int64_t group_id,
                        int job_index, int rank, int attempt, const char *reason,
                        const char *handle, bool in_setup, int code, int sig)
{
    if (b->q_len == b->q_cap) {
        if (b->q_head > 0) {
            memmove(b->queue, b->queue + b->q_head, (b->q_len - b->q_head) * sizeof *b->queue);
            b->q_len -= b->q_head;
            b->q_head = 0;
        }
        if (b->q_len == b->q_cap) {
            b->q_cap = b->q_cap ? b->q_cap * 2 : 32;
            b->queue = jg_xrealloc(b->queue, b->q_cap * sizeof *b->queue);
        }
    }
    b->queue[b->q_len++] = (queued_t){
        .ev = {.type = type, .group_id = group_id, .job_index = job_index, .rank = rank,
               .attempt = attempt, .in_setup = in_setup, .exit_code = code, .signal = sig},
        .reason = jg_xstrdup(reason),
        .handle = jg_xstrdup(handle),
    };
    if (!b->flush_timer && !b->flushing)
        b->flush_timer = jg_loop_add_timer(b->loop, 0, on_flush_timer, b);
    return &b->queue[b->q_len - 1];
}

static void node_event(node_t *n, jg_backend_event_type_t type, const char *reason,
                       bool in_setup, int code, int sig)
{
    if (type == JG_BACKEND_NODE_EXITED || type == JG_BACKEND_NODE_LOST ||
        type == JG_BACKEND_LAUNCH_FAILED)
        node_put_gpus(n);       /* free for the next node the moment this one is over */
    queue_event(n->b, type, n->group_id, n->job_index, n->rank, n->attempt, reason, NULL,
                in_setup, code, sig);
    if (type == JG_BACKEND_NODE_EXITED || type == JG_BACKEND_NODE_LOST ||
        type == JG_BACKEND_LAUNCH_FAILED)
        stop_waits_check(n->b);
}

/* ---- status file -------------------------------------------------------- */

static void parse_status_line(node_t *n, char *line)
{
    char *end;
    long att = strtol(line, &end, 10);
    if (end == line || *end != ' ' || att != n->attempt)
        return;
    char *verb = end + 1;
    if (strncmp(verb, "started", 7) == 0) {
        n->seen_started = true;
    } else if (strcmp(verb, "setup_done") == 0) {
        n->setup_done = true;
    } else if (strcmp(verb, "running") == 0) {
        n->released = true;
    } else if (strcmp(verb, "cancelled") == 0) {
        if (!n->exited)
            n->cancelled = true;
    } else if (strncmp(verb, "exit ", 5) == 0 && !n->exited && !n->cancelled) {
        char phase[8];
        int code, sig;
        if (sscanf(verb + 5, "%7s %d %d", phase, &code, &sig) == 3) {
            n->exited = true;
            n->exit_in_setup = strcmp(phase, "setup") == 0;
            n->exit_code = code;
            n->exit_signal = sig;
        }
    }
}

/* Reads the status lines appended since the last call (whole lines only).
 * The file is the node's user's: what it says can change no more than what
 * is reported for this node, never which process is signalled; it is read
 * without blocking and at most STATUS_MAX bytes of it, so a huge or endless
 * file costs the loop nothing. */
static void read_status(node_t *n)
{
    jg_error_t err;
    int fd = open_node_file(n->dir, JG_SHIM_STATUS, O_RDONLY, 0, NULL, &err);
    if (fd < 0) {
        if (errno != ENOENT && !n->status_refused) {
            n->status_refused = true;       /* once: the user may provoke it at will */
            jg_log("warn", "group %" PRId64 ": %s", n->group_id, err.text);
        }
        return;
    }
    char buf[4096];
    size_t have = 0;
    for (;;) {
        size_t want = sizeof buf - have;
        if (n->offset + (off_t)have >= STATUS_MAX)
            break;
        if ((off_t)want > STATUS_MAX - n->offset - (off_t)have)
            want = (size_t)(STATUS_MAX - n->offset - (off_t)have);
        ssize_t r = pread(fd, buf + have, want, n->offset + (off_t)have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t used = 0;
        char *nl;
        while ((nl = memchr(buf + used, '\n', have - used))) {
            *nl = '\0';
            parse_status_line(n, buf + used);
            used = (size_t)(nl - buf) + 1;
        }
        if (used == 0 && have == sizeof buf)
            used = have;        /* a line longer than any we write: skip it */
        n->offset += (off_t)used;
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    close(fd);
}

/* Reports what the status says and was not reported yet.  replay: after a
 * restart, SETUP_DONE is left out for a node already released (the core saw
 * it before it released the barrier). */
static void report(node_t *n, bool replay)
{
    if (n->quiet)
        return;
    if (n->setup_done && !n->reported_setup_done) {
        n->reported_setup_done = true;
        if (!(replay && n->released))
            node_event(n, JG_BACKEND_SETUP_DONE, NULL, false, 0, 0);
    }
    /* The end waits for the shim's: status is the user's to write, and what a
     * final event frees (the node's GPUs, its share of the capacity) may go
     * to others only once the node's processes are gone. */
    if (n->reported_final || !n->shim_gone)
        return;
    if (n->exited) {
        char oom[128] = "";
        if (n->exit_code != 0)
            oom_note(n, oom, sizeof oom);
        n->reported_final = true;
        node_event(n, JG_BACKEND_NODE_EXITED, oom[0] ? oom : NULL, n->exit_in_setup,
                   n->exit_code, n->exit_signal);
    } else if (n->cancelled) {
        n->reported_final = true;
        node_event(n, JG_BACKEND_NODE_EXITED, NULL, false, 128 + SIGTERM, SIGTERM);
    }
}

/* ---- node records ------------------------------------------------------- */

static void node_free(local_t *b, node_t *n)
{
    for (node_t **pp = &b->nodes; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            break;
        }
    }
    if (n->pidfd >= 0) {
        jg_loop_del_fd(b->loop, n->pidfd);
        close(n->pidfd);
    }
    if (n->wd >= 0) {
        bool shared = false;
        for (node_t *o = b->nodes; o; o = o->next)
            if (o->wd == n->wd)
                shared = true;
        if (!shared)
            inotify_rm_watch(b->inotify_fd, n->wd);
    }
    if (n->errfd >= 0)
        close(n->errfd);
    stream_close(n);
    node_put_gpus(n);
    free(n->cgroup);
    free(n->lost_reason);
    free(n->dir);
    free(n);
}

/* What the node's child wrote before it died without exec'ing the shim
 * (netns setup, credentials); "" if nothing. */
static void child_error(node_t *n, char *buf, size_t len)
{
    buf[0] = '\0';
    if (n->errfd < 0)
        return;
    ssize_t r;
    while ((r = read(n->errfd, buf, len - 1)) < 0 && errno == EINTR)
        ;
    buf[r > 0 ? r : 0] = '\0';
}

/* The shim is gone: kill what is left of its process group (before reaping,
 * so the group id cannot have been reused), reap it, read its last lines and
 * report; a shim that recorded no exit was killed from outside. */
static void node_dead(local_t *b, node_t *n)
{
    /* A shim we reattached to is reaped by init, not us: in the moment between
     * its death and this kill, the group id could in theory have been reused;
     * members still alive keep it reserved, which is the case that matters. */
    (void)jg_proc_kill(-n->pid, SIGKILL);
    n->shim_gone = true;
    stream_drain(n);        /* its output reaches the core before its end */
    char why[160] = "";
    siginfo_t si = {0};
    if (waitid(P_PIDFD, (id_t)n->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid != 0) {
        if (si.si_code == CLD_EXITED)
            snprintf(why, sizeof why, " with status %d", si.si_status);
        else
            snprintf(why, sizeof why, " by signal %d", si.si_status);
    }
    read_status(n);
    report(n, false);
    char child_err[512];
    if (!n->seen_started && !n->reported_final && !n->quiet)
        child_error(n, child_err, sizeof child_err);
    else
        child_err[0] = '\0';
    if (child_err[0]) {
        n->reported_final = true;
        node_event(n, JG_BACKEND_LAUNCH_FAILED, child_err, false, 0, 0);
    } else if (!n->reported_final && !n->quiet && n->lost_reason) {
        n->reported_final = true;
        node_event(n, JG_BACKEND_NODE_LOST, n->lost_reason, false, 0, 0);
    } else if (!n->reported_final && !n->quiet && n->stopping) {
        /* Forced at the end of stop()'s grace: the shim went with its node. */
        n->reported_final = true;
        node_event(n, JG_BACKEND_NODE_EXITED, NULL, !n->setup_done, 128 + SIGKILL, SIGKILL);
    } else if (!n->reported_final && !n->quiet) {
        char *reason, oom[128];
        oom_note(n, oom, sizeof oom);
        if (!n->seen_started)
            reason = jg_xasprintf("node could not start (shim pid %d ended%s before "
                                  "recording anything; see the daemon's log)",
                                  (int)n->pid, why);
        else
            reason = jg_xasprintf("node process tree was killed (shim pid %d died%s "
                                  "without recording an exit)%s%s",
                                  (int)n->pid, why, oom[0] ? ": " : "", oom);
        n->reported_final = true;
        node_event(n, JG_BACKEND_NODE_LOST, reason, false, 0, 0);
        free(reason);
    }
    /* The node is over: so is whatever is left in its cgroup (a process that
     * left its process group, when nodes share the host network). */
    if (n->cgroup)
        cg_node_remove(n->cgroup, 0);
    node_free(b, n);
}

static void on_pidfd(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    node_t *n = arg;
    local_t *b = n->b;
    node_dead(b, n);
    flush_events(b);
}

static void on_inotify(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    (void)revents;
    local_t *b = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t len = read(fd, buf, sizeof buf);
        if (len < 0 && errno == EINTR)
            continue;
        if (len <= 0)
            break;
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ie = (const struct inotify_event *)p;
            for (node_t *n = b->nodes; n; n = n->next) {
                if (ie->wd == n->wd || (ie->mask & IN_Q_OVERFLOW)) {
                    read_status(n);
                    report(n, false);
                }
            }
            p += sizeof *ie + ie->len;
        }
    }
    flush_events(b);
}

static node_t *node_new(local_t *b, int64_t group_id, int job_index, int rank, int attempt,
                        const char *dir)
{
    node_t *n = jg_xcalloc(1, sizeof *n);
    n->b = b;
    n->group_id = group_id;
    n->job_index = job_index;
    n->rank = rank;
    n->attempt = attempt;
    n->dir = jg_xstrdup(dir);
    n->pidfd = -1;
    n->wd = -1;
    n->errfd = -1;
    n->stream.fd = -1;
    return n;
}

static void node_link(local_t *b, node_t *n)
{
    for (node_t *o = b->nodes; o; o = o->next)
        if (o->group_id == n->group_id && o->job_index == n->job_index && o->rank == n->rank)
            o->superseded = true;
    n->next = b->nodes;
    b->nodes = n;
    stream_arm(b, 0);
}

/* ---- group networks ----------------------------------------------------- */

static gnet_t *gnet_find(local_t *b, int64_t group_id)
{
    for (gnet_t *g = b->gnets; g; g = g->next)
        if (g->group_id == group_id)
            return g;
    return NULL;
}

/* Stops following a hub; kill: also kills its keeper (the hub goes). */
static int gnet_free(local_t *b, gnet_t *g, bool kill_keeper, jg_error_t *err)
{
    for (gnet_t **pp = &b->gnets; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    int rc = 0;
    if (g->hub.pidfd >= 0)
        jg_loop_del_fd(b->loop, g->hub.pidfd);
    if (kill_keeper)
        rc = jg_netns_hub_destroy(&g->hub, CLEANUP_WAIT_MS, err);
    else
        jg_netns_hub_close(&g->hub);
    free(g);
    return rc;
}

/* Whether a network namespace can only have been made by a node's child of
 * ours: not our own (the host's), and, when we are root, owned by our own
 * user namespace, where an unprivileged user cannot make one (theirs hang
 * below a user namespace they created).  A shim runs as its user, who could
 * move it into a namespace of their own; we then kill none of its members. */
static bool netns_made_by_us(int nsfd)
{
    struct stat ns, own;
    if (fstat(nsfd, &ns) < 0 || stat("/proc/self/ns/net", &own) < 0 ||
        (ns.st_dev == own.st_dev && ns.st_ino == own.st_ino))
        return false;
    if (geteuid() != 0)
        return true;        /* an instance of one user signals only that user's processes */
    int userns = ioctl(nsfd, NS_GET_USERNS);
    bool ours = userns >= 0 && fstat(userns, &ns) == 0 && stat("/proc/self/ns/user", &own) == 0 &&
                ns.st_dev == own.st_dev && ns.st_ino == own.st_ino;
    if (userns >= 0)
        close(userns);
    return ours;
}

/* Kills a shim's process group and, when nodes have their own network
 * namespace, every process left in it (one that left the group by setsid).
 * pid and start come from our own records only (the fork, the store's
 * handle, the group's .shims), never from a file the node's user can write.
 * The namespace is held open across the kill, so its identity cannot be
 * reused meanwhile; nothing is killed if the pid no longer has `start`. */
static void kill_node_tree(const local_t *b, pid_t pid, unsigned long long start)
{
    int nsfd = -1;
    unsigned long long now = 0;
    if (pid <= 1)
        return;
    if (isolated(b)) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
        nsfd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (jg_proc_starttime(pid, &now) == 0 && now == start) {
        (void)jg_proc_kill(-pid, SIGKILL);
        if (nsfd >= 0 && netns_made_by_us(nsfd))
            jg_netns_kill_members(nsfd);
    }
    if (nsfd >= 0)
        close(nsfd);
}

/* ---- the group's record of its shims ------------------------------------
 *
 * <group dir>/.shims is root's own account of every shim it started for the
 * group, one line per attempt, appended right after the fork:
 *
 *   <attempt> <pid> <starttime> <gpus: 0,1 or -> <job>-<rank>
 *
 * The group directory is the daemon's (mode 0711), so no node user can write
 * there; cleanup kills what this record names (a daemon that restarted no
 * longer follows every shim), and reattach takes a node's GPUs back from it.
 * The node's own status and gpus files are its user's and are never used
 * to pick a process or a resource. */

typedef struct {
    int attempt;
    pid_t pid;
    unsigned long long start;
    char gpus[MAX_GPUS_PER_NODE * 12];
    char node[NAME_MAX + 1];
} shim_rec_t;
_Static_assert(sizeof ((shim_rec_t *)0)->gpus == 768, "parse_shim_rec reads gpus with %767s");

/* Appends one shim to the group's record; 0, or -1 + err. */
static int record_shim(const char *gdir, const char *node, int attempt, pid_t pid,
                       unsigned long long start, const char *gpus, jg_error_t *err)
{
    char *path = jg_xasprintf("%s/%s", gdir, GROUP_SHIMS);
    int fd = open_own_record(path, O_WRONLY | O_APPEND | O_CREAT, err);
    free(path);
    if (fd < 0)
        return -1;
    char *line = jg_xasprintf("%d %d %llu %s %s\n", attempt, (int)pid, start,
                              gpus && gpus[0] ? gpus : "-", node);
    ssize_t w = write(fd, line, strlen(line));     /* O_APPEND: one line, whole */
    int rc = 0;
    if (w != (ssize_t)strlen(line))
        rc = jg_errprintf(err, "cannot record shim %d in %s/%s: %s", (int)pid, gdir, GROUP_SHIMS,
                          w < 0 ? strerror(errno) : "short write");
    free(line);
    close(fd);
    return rc;
}

/* Parses one record line; false if it is not one. */
static bool parse_shim_rec(const char *line, shim_rec_t *r)
{
    int pid, used = 0;
    char gpus[sizeof r->gpus];
    if (sscanf(line, "%d %d %llu %767s %n", &r->attempt, &pid, &r->start, gpus, &used) != 4 ||
        used == 0 || pid <= 1 || r->attempt < 1)
        return false;
    size_t l = strcspn(line + used, "\n");
    if (l == 0 || l >= sizeof r->node)
        return false;
    memcpy(r->node, line + used, l);
    r->node[l] = '\0';
    r->pid = pid;
    snprintf(r->gpus, sizeof r->gpus, "%s", strcmp(gpus, "-") == 0 ? "" : gpus);
    return true;
}

/* The group's record, in order (caller frees); NULL with *n = 0 if there is
 * none or it is not the daemon's own file. */
static shim_rec_t *read_shim_records(const char *gdir, size_t *n)
{
    *n = 0;
    char *path = jg_xasprintf("%s/%s", gdir, GROUP_SHIMS);
    jg_error_t err;
    int fd = open_own_record(path, O_RDONLY, &err);
    if (fd < 0 && errno != ENOENT)
        jg_log("warn", "%s", err.text);
    free(path);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    shim_rec_t *v = NULL;
    size_t cap = 0;
    char line[sizeof v->gpus + sizeof v->node + 96];
    while (fgets(line, sizeof line, f)) {
        shim_rec_t r;
        if (!parse_shim_rec(line, &r))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            v = jg_xrealloc(v, cap * sizeof *v);
        }
        v[(*n)++] = r;
    }
    fclose(f);
    return v;
}

/* Kills every shim the group's record names that still runs (its start time
 * matches), with its process group and its own network namespace. */
static void kill_recorded_shims(const local_t *b, const char *gdir)
{
    size_t n = 0;
    shim_rec_t *v = read_shim_records(gdir, &n);
    for (size_t i = 0; i < n; i++)
        kill_node_tree(b, v[i].pid, v[i].start);
    free(v);
}

/* Kills the live nodes of a group, to be reported lost for `reason`. */
static void lose_group_nodes(local_t *b, int64_t group_id, const char *reason)
{
    for (node_t *n = b->nodes; n; n = n->next) {
        if (n->group_id != group_id || n->quiet || n->reported_final)
            continue;
        free(n->lost_reason);
        n->lost_reason = jg_xstrdup(reason);
        kill_node_tree(b, n->pid, n->start);
    }
}

/* A keeper died while its group was not being cleaned up: the group's
 * network went with it, so its nodes cannot talk any more. */
static void on_keeper_dead(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    gnet_t *g = arg;
    local_t *b = g->b;
    char *reason = jg_xasprintf("the group's network is gone (its keeper, pid %d, died)",
                                (int)g->hub.pid);
    jg_log("warn", "group %" PRId64 ": %s; killing its nodes", g->group_id, reason);
    lose_group_nodes(b, g->group_id, reason);
    free(reason);
    gnet_free(b, g, true, NULL);
}

/* Follows a hub (takes it over, also on failure). */
static gnet_t *gnet_watch(local_t *b, int64_t group_id, jg_netns_hub_t *hub, jg_error_t *err)
{
    gnet_t *g = jg_xcalloc(1, sizeof *g);
    g->b = b;
    g->group_id = group_id;
    g->hub = *hub;
    if (jg_loop_add_fd(b->loop, g->hub.pidfd, EPOLLIN, on_keeper_dead, g, err) < 0) {
        jg_netns_hub_close(&g->hub);
        free(g);
        return NULL;
    }
    g->next = b->gnets;
    b->gnets = g;
    return g;
}

/* The keeper recorded in <group dir>/net; -1 if there is none. */
static int read_net_file(const local_t *b, int64_t group_id, pid_t *pid,
                         unsigned long long *start)
{
    char *gdir = group_dir(b, group_id);
    char *path = jg_xasprintf("%s/" GROUP_NET, gdir);
    jg_error_t err;
    int fd = open_own_record(path, O_RDONLY, &err);     /* a keeper only we recorded */
    if (fd < 0 && errno != ENOENT)
        jg_log("warn", "%s", err.text);
    free(path);
    free(gdir);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int p = 0;
    int n = fscanf(f, "keeper %d %llu", &p, start);
    fclose(f);
    *pid = p;
    return n == 2 && p > 0 ? 0 : -1;
}

/* The group's hub: followed already, found again from <group dir>/net, or
 * created (its keeper recorded there).  NULL + err if none can be had. */
static gnet_t *group_hub(local_t *b, int64_t group_id, jg_error_t *err)
{
    gnet_t *g = gnet_find(b, group_id);
    if (g)
        return g;
    jg_netns_hub_t hub;
    pid_t pid;
    unsigned long long start;
    if (read_net_file(b, group_id, &pid, &start) == 0 &&
        jg_netns_hub_open(pid, start, &hub, NULL) == 0)
        return gnet_watch(b, group_id, &hub, err);

    char *gdir = group_dir(b, group_id);
    char *argv[] = {b->shim_path, "--hold", gdir, NULL};
    char *text = NULL;
    const creds_t none = {0};
    if (jg_netns_hub_create(b->net.mode, b->nat ? &b->uplink : NULL, argv, &hub, err) < 0)
        goto done;
    text = jg_xasprintf("keeper %d %llu\n", (int)hub.pid, hub.start);
    if (write_file(&none, gdir, GROUP_NET, text, strlen(text), 0644, err) < 0) {
        jg_netns_hub_destroy(&hub, CLEANUP_WAIT_MS, NULL);
        goto done;
    }
    g = gnet_watch(b, group_id, &hub, err);
done:
    free(text);
    free(gdir);
    return g;
}

/* ---- launch ------------------------------------------------------------- */

static bool same_key(const char *a, const char *b)
{
    size_t la = strcspn(a, "="), lb = strcspn(b, "=");
    return la == lb && strncmp(a, b, la) == 0;
}

/* Appends HOME, USER, LOGNAME of the node's user unless the job's envs set
 * them, and `forced` (GPU variables: ours, replacing any the job set);
 * returns the env as one NUL-separated buffer (caller frees). */
static char *env_blob(char **env, const struct passwd *pw, const char *user,
                      char *const *forced, size_t n_forced, size_t *len_out)
{
    const char *home = pw && pw->pw_dir ? pw->pw_dir : "/";
    const char *name = pw && pw->pw_name ? pw->pw_name : user;
    char *extra[3] = {jg_xasprintf("HOME=%s", home), jg_xasprintf("USER=%s", name ? name : ""),
                      jg_xasprintf("LOGNAME=%s", name ? name : "")};
    size_t len = 0;
    for (char **p = env; *p; p++)
        len += strlen(*p) + 1;
    for (int i = 0; i < 3; i++)
        len += strlen(extra[i]) + 1;
    for (size_t i = 0; i < n_forced; i++)
        len += strlen(forced[i]) + 1;
    char *blob = jg_xmalloc(len + 1);
    size_t off = 0;
    for (char **p = env; *p; p++) {
        bool replaced = false;
        for (size_t i = 0; i < n_forced; i++)
            replaced = replaced || same_key(*p, forced[i]);
        if (replaced)
            continue;
        size_t l = strlen(*p);
        memcpy(blob + off, *p, l + 1);
        off += l + 1;
    }
    for (size_t i = 0; i < n_forced; i++) {
        size_t l = strlen(forced[i]);
        memcpy(blob + off, forced[i], l + 1);
        off += l + 1;
    }
    for (int i = 0; i < 3; i++) {
        size_t keylen = (size_t)(strchr(extra[i], '=') - extra[i]) + 1;
        bool set = false;
        for (char **p = env; *p; p++)
            if (strncmp(*p, extra[i], keylen) == 0)
                set = true;
        if (!set) {
            size_t l = strlen(extra[i]);
            memcpy(blob + off, extra[i], l + 1);
            off += l + 1;
        }
        free(extra[i]);
    }
    *len_out = off;
    return blob;
}

/* What every node of a launch shares of its group's network. */
typedef struct {
    int hub_pidfd;              /* -1 when nodes share the host network */
    const char *hosts_path;     /* NULL when nodes keep the host's /etc/hosts */
    const char *resolv_path;    /* NULL when nodes keep the host's /etc/resolv.conf */
} group_net_t;

/* Closes every descriptor from 3 on but a and b. */
static void close_all_but(int a, int b)
{
    unsigned lo = (unsigned)(a < b ? a : b), hi = (unsigned)(a < b ? b : a);
    if (lo > 3)
        syscall(SYS_close_range, 3u, lo - 1, 0u);
    if (hi > lo + 1)
        syscall(SYS_close_range, lo + 1, hi - 1, 0u);
    syscall(SYS_close_range, hi + 1, ~0u, 0u);
}

/* In the node's child: reports why it cannot become the node, and ends. */
static __attribute__((noreturn)) void child_die(int errw, const char *msg)
{
    (void)!write(errw, msg, strlen(msg));
    _exit(126);
}

/* The node's /tmp, <node dir>/tmp, made (or found again, for a later
 * attempt) and opened without following anything the node's user may have
 * put there: a symbolic link in its place is refused, never chmod'ed.  It must
 * be a directory of ours or of the node's user.  Returns an O_RDONLY
 * directory fd (close-on-exec) with mode 01777, or -1 + err. */
static int open_node_tmp(const char *dir, const creds_t *creds, jg_error_t *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return jg_errprintf(err, "cannot open %s: %s", dir, strerror(errno));
    int fd = -1;
    struct stat st = {0};
    if (mkdirat(dfd, NODE_TMP, 01777) < 0 && errno != EEXIST) {
        jg_errprintf(err, "cannot create %s/%s: %s", dir, NODE_TMP, strerror(errno));
        goto done;
    }
    fd = openat(dfd, NODE_TMP, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        jg_errprintf(err, "refusing %s/%s: %s", dir, NODE_TMP,
                     errno == ELOOP || errno == ENOTDIR ? "it is not a directory (a symbolic "
                     "link or file was put there)" : strerror(errno));
        goto done;
    }
    bool owner_ok = fstat(fd, &st) == 0 &&
                    (st.st_uid == geteuid() || (creds->active && st.st_uid == creds->uid));
    if (!owner_ok) {
        jg_errprintf(err, "refusing %s/%s: it belongs to uid %d, neither the daemon nor the "
                     "node's user", dir, NODE_TMP, (int)st.st_uid);
        close(fd);
        fd = -1;
        goto done;
    }
    if (fchmod(fd, 01777) < 0) {
        jg_errprintf(err, "cannot set the mode of %s/%s: %s", dir, NODE_TMP, strerror(errno));
        close(fd);
        fd = -1;
    }
done:
    close(dfd);
    return fd;
}

/* Writes one node's files and starts its shim.  Fails with nothing started. */
static int launch_one(local_t *b, const jg_launch_t *req, const jg_node_ref_t *ref,
                      const creds_t *creds, const struct passwd *pw, const group_net_t *gnet,
                      jg_error_t *err)
{
    int rc = -1;
    const jg_job_spec_t *job = &req->spec->jobs[ref->job_index];
    char *gdir = group_dir(b, req->group_id);
    char *dir = node_dir(b, req->group_id, job->name, ref->rank);
    char *path = NULL, *blob = NULL, *handle = NULL, *tmp = NULL, *hostname = NULL;
    char **env = NULL;
    char (*ips)[32] = NULL;
    const char **ip_ptrs = NULL;
    int fd = -1, pidfd = -1, wd = -1, errpipe[2] = {-1, -1}, cg_fd = -1, tmp_fd = -1;
    pid_t pid = -1;
    node_t *n = NULL;
    jg_netns_bind_t *binds = NULL;
    int gpus[MAX_GPUS_PER_NODE];
    size_t n_gpus = 0;
    char *forced[2] = {NULL, NULL}, *cg = NULL, *gpu_log = NULL;
    size_t n_forced = 0;

    if (jg_mkdir_p(gdir, 0711, err) < 0)
        goto done;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {    /* the node's owner (and root) only */
        jg_errprintf(err, "cannot create %s: %s", dir, strerror(errno));
        goto done;
    }
    if (own(creds, dir, err) < 0)
        goto done;
    path = jg_xasprintf("%s/%s", dir, JG_SHIM_WORK);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        jg_errprintf(err, "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    if (own(creds, path, err) < 0)
        goto done;
    free(path);
    path = NULL;
    if (b->net.own_mounts) {
        /* The node's /tmp: kept across attempts, removed by cleanup.  The
         * child mounts it by name (in its own mount namespace), then checks
         * that what it mounted is this very directory. */
        tmp_fd = open_node_tmp(dir, creds, err);
        if (tmp_fd < 0)
            goto done;
        tmp = jg_xasprintf("%s/%s", dir, NODE_TMP);
    }

    /* Volumes: checked, their host mount points made, before anything runs. */
    if (plan_volumes(b, req, job, creds, &binds, err) < 0)
        goto done;

    /* GPUs: the job's count of its type, by index; an earlier attempt's go
     * back first (this one replaces it). */
    for (node_t *o = b->nodes; o; o = o->next)
        if (o->group_id == req->group_id && o->job_index == ref->job_index && o->rank == ref->rank)
            node_put_gpus(o);
    const char *accel = job->accel.name;
    int want = accel ? job->accel.count : 0;
    char list[MAX_GPUS_PER_NODE * 12];
    if (want > 0 && b->gpus_known) {
        if (want > MAX_GPUS_PER_NODE || jg_gpu_pool_take(b->gpus, accel, want, gpus) < 0) {
            jg_errprintf(err, "no GPU for this node: it asks %s:%d, and %zu of the host's %zu "
                         "%s GPU(s) are free", accel, want,
                         jg_gpu_pool_count(b->gpus, accel, true),
                         jg_gpu_pool_count(b->gpus, accel, false), accel);
            goto done;
        }
        n_gpus = (size_t)want;
        format_indices(gpus, n_gpus, list, sizeof list);
        forced[n_forced++] = jg_xasprintf("CUDA_VISIBLE_DEVICES=%s", list);
        forced[n_forced++] = jg_xasprintf("NVIDIA_VISIBLE_DEVICES=%s", list);
        gpu_log = jg_xasprintf("jgsched: GPUs %s (%s:%d): CUDA_VISIBLE_DEVICES=%s\n", list, accel,
                               want, list);
    } else if (want > 0) {
        gpu_log = jg_xasprintf("jgsched: warning: this node asks %s:%d, but no GPU index is "
                               "known on this host (%s): CUDA_VISIBLE_DEVICES is not set\n",
                               accel, want, b->gpus_why);
    } else if (b->gpus_known) {
        forced[n_forced++] = jg_xstrdup("CUDA_VISIBLE_DEVICES=");   /* asked none: sees none */
    }
    if (n_gpus) {
        char *text = jg_xasprintf("%d %s\n", ref->attempt, list);
        int r = write_file(creds, dir, JG_SHIM_GPUS, text, strlen(text), 0644, err);
        free(text);
        if (r < 0)
            goto done;
    } else {
        path = jg_xasprintf("%s/%s", dir, JG_SHIM_GPUS);
        if (unlink(path) < 0 && errno != ENOENT) {
            jg_errprintf(err, "cannot remove %s: %s", path, strerror(errno));
            goto done;
        }
        free(path);
        path = NULL;
    }

    /* cgroup: the attempt's own, limited to the job's cpus and memory. */
    if (b->cg_base) {
        cg = cg_node_path(b, req->group_id, dir, ref->attempt);
        if (cg_node_create(cg, job, err) < 0)
            goto done;
        path = jg_xasprintf("%s/cgroup.procs", cg);
        cg_fd = open(path, O_WRONLY | O_CLOEXEC);
        if (cg_fd < 0) {
            jg_errprintf(err, "cannot open %s: %s", path, strerror(errno));
            goto done;
        }
        free(path);
        path = NULL;
    }

    ips = jg_xcalloc((size_t)job->num_nodes, sizeof *ips);
    ip_ptrs = jg_xcalloc((size_t)job->num_nodes + 1, sizeof *ip_ptrs);
    for (int r = 0; r < job->num_nodes; r++) {
        node_address(b, req->spec, ref->job_index, r, ips[r], sizeof ips[r]);
        ip_ptrs[r] = ips[r];
    }
    env = jg_node_env(req->spec, req->group_id, ref->job_index, ref->rank, ref->attempt,
                      req->submitted_us, ip_ptrs);
    size_t blob_len = 0;
    blob = env_blob(env, pw, req->user, forced, n_forced, &blob_len);
    if (write_file(creds, dir, JG_SHIM_ENV, blob, blob_len, 0600, err) < 0)
        goto done;

    struct {
        const char *name;
        const char *text;
        mode_t mode;
    } files[] = {
        {JG_SHIM_SETUP, job->setup, 0644},
        {JG_SHIM_RUN, job->run, 0644},
        {JG_SHIM_WORKDIR, job->workdir, 0644},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (files[i].text) {
            char *text = jg_xasprintf("%s\n", files[i].text);
            int r = write_file(creds, dir, files[i].name, text, strlen(text), files[i].mode, err);
            free(text);
            if (r < 0)
                goto done;
        } else {
            path = jg_xasprintf("%s/%s", dir, files[i].name);
            if (unlink(path) < 0 && errno != ENOENT) {
                jg_errprintf(err, "cannot remove %s: %s", path, strerror(errno));
                goto done;
            }
            free(path);
            path = NULL;
        }
    }

    /* The barrier: a fresh FIFO per attempt, so an old shim keeps its own. */
    path = jg_xasprintf("%s/%s", dir, JG_SHIM_RELEASE);
    if ((unlink(path) < 0 && errno != ENOENT) || mkfifo(path, 0600) < 0) {
        jg_errprintf(err, "cannot create the FIFO %s: %s", path, strerror(errno));
        goto done;
    }
    if (own(creds, path, err) < 0)
        goto done;
    free(path);

    /* output.log exists from the start, so open_log works before the shim runs. */
    path = jg_xasprintf("%s/%s", dir, JG_SHIM_LOG);
    fd = open_node_file(dir, JG_SHIM_LOG, O_WRONLY | O_CREAT | O_APPEND, 0644, NULL, err);
    if (fd < 0)
        goto done;
    if (creds->active && fchown(fd, creds->uid, creds->gid) < 0) {
        jg_errprintf(err, "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    struct stat log_st;
    if (fstat(fd, &log_st) == 0)
        note_attempt_start(dir, ref->attempt, (int64_t)log_st.st_size);
    if (b->warning) {       /* never silently: the user reads it with the node's output */
        char *line = jg_xasprintf("jgsched: warning: %s\n", b->warning);
        (void)!write(fd, line, strlen(line));
        free(line);
    }
    if (gpu_log)
        (void)!write(fd, gpu_log, strlen(gpu_log));
    close(fd);
    free(path);

    /* status: the new attempt's lines start at the current end. */
    path = jg_xasprintf("%s/%s", dir, JG_SHIM_STATUS);
    struct stat st;
    fd = open_node_file(dir, JG_SHIM_STATUS, O_WRONLY | O_CREAT | O_APPEND, 0644, &st, err);
    if (fd < 0)
        goto done;
    if (creds->active && fchown(fd, creds->uid, creds->gid) < 0) {
        jg_errprintf(err, "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    close(fd);
    fd = -1;
    wd = inotify_add_watch(b->inotify_fd, path, IN_MODIFY | IN_DONT_FOLLOW);
    if (wd < 0) {
        jg_errprintf(err, "cannot watch %s: %s", path, strerror(errno));
        goto done;
    }

    int index = jg_netns_node_index(req->spec, ref->job_index, ref->rank);
    hostname = jg_xasprintf("%s-%d", job->name, ref->rank);
    jg_netns_node_t plan = {
        .mode = b->net.mode,
        .own_mounts = b->net.own_mounts,
        .hub_pidfd = gnet->hub_pidfd,
        .index = index,
        .hostname = hostname,
        .hosts_path = gnet->hosts_path,
        .resolv_path = gnet->resolv_path,
        .default_route = b->nat,
        .tmp_path = tmp,
        .keep_path = dir,
        .binds = binds,
        .n_binds = binds ? job->n_volumes : 0,
        .uid = creds->active ? creds->uid : geteuid(),
        .gid = creds->active ? creds->gid : getegid(),
    };
    bool namespaces = isolated(b) || b->net.own_mounts;

    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", ref->attempt);
    char *argv[] = {b->shim_path, dir, attempt, isolated(b) ? "net" : NULL, NULL};
    char *envp[] = {NULL};
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        jg_errprintf(err, "cannot create a pipe: %s", strerror(errno));
        goto done;
    }
    pid = fork();
    if (pid < 0) {
        jg_errprintf(err, "cannot fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) {
        /* The daemon is single-threaded, so the child may do more than
         * async-signal-safe calls; still, it allocates nothing. */
        char msg[400];
        int errw = errpipe[1];
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                signal(sig, SIG_DFL);       /* nothing the daemon ignores reaches the node */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (setsid() < 0) {
            snprintf(msg, sizeof msg, "setsid: %s", strerror(errno));
            child_die(errw, msg);
        }
        if (cg_fd >= 0 && write(cg_fd, "0", 1) != 1) {
            snprintf(msg, sizeof msg, "cannot join the node's cgroup %s: %s", cg, strerror(errno));
            child_die(errw, msg);
        }
        if (namespaces && jg_netns_node_enter(&plan, msg, sizeof msg) < 0)
            child_die(errw, msg);
        /* The user owns the node directory and may have swapped tmp for a
         * link since we checked it: nothing of ours may run over a /tmp
         * that is not the directory we opened (no process but us sees it). */
        struct stat want, got;
        if (tmp_fd >= 0 && (fstat(tmp_fd, &want) < 0 || stat("/tmp", &got) < 0 ||
                            want.st_dev != got.st_dev || want.st_ino != got.st_ino)) {
            snprintf(msg, sizeof msg, "refusing %s: it was replaced while the node was being "
                     "set up", tmp);
            child_die(errw, msg);
        }
        if (creds->active &&
            (setgroups((size_t)creds->n_groups, creds->groups) < 0 || setgid(creds->gid) < 0 ||
             setuid(creds->uid) < 0)) {
            snprintf(msg, sizeof msg, "cannot become uid %d gid %d: %s", (int)creds->uid,
                     (int)creds->gid, strerror(errno));
            child_die(errw, msg);
        }
        /* A node may lay its volumes over any directory of its own mount
         * namespace (/etc included), so a set-user-ID program run there would
         * trust files the user wrote: like a container runtime's
         * no-new-privileges, no exec from here on gains privileges. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
            snprintf(msg, sizeof msg, "cannot set no_new_privs: %s", strerror(errno));
            child_die(errw, msg);
        }
        /* Everything but the error pipe and the shim, which exec closes. */
        close_all_but(errw, b->shim_fd);
        syscall(SYS_execveat, b->shim_fd, "", argv, envp, AT_EMPTY_PATH);
        snprintf(msg, sizeof msg, "cannot execute %s: %s", b->shim_path, strerror(errno));
        child_die(errw, msg);
    }
    close(errpipe[1]);
    errpipe[1] = -1;
    if (cg_fd >= 0) {
        close(cg_fd);
        cg_fd = -1;
    }
    pidfd = jg_proc_pidfd_open(pid);
    unsigned long long start = 0;
    if (pidfd < 0 || jg_proc_starttime(pid, &start) < 0) {
        jg_errprintf(err, "cannot follow the shim (pid %d): %s", (int)pid, strerror(errno));
        goto done;
    }
    if (record_shim(gdir, strrchr(dir, '/') + 1, ref->attempt, pid, start, n_gpus ? list : NULL,
                    err) < 0)
        goto done;

    n = node_new(b, req->group_id, ref->job_index, ref->rank, ref->attempt, dir);
    n->pid = pid;
    n->start = start;
    n->is_child = true;
    n->offset = st.st_size;
    n->wd = wd;
    n->pidfd = pidfd;
    n->errfd = errpipe[0];
    if (jg_loop_add_fd(b->loop, pidfd, EPOLLIN, on_pidfd, n, err) < 0) {
        n->errfd = -1;
        goto done;
    }
    errpipe[0] = -1;
    if (n_gpus) {
        n->gpus = jg_xmalloc(n_gpus * sizeof *n->gpus);
        memcpy(n->gpus, gpus, n_gpus * sizeof *n->gpus);
        n->n_gpus = n_gpus;
        n_gpus = 0;
    }
    n->cgroup = cg;
    cg = NULL;
    node_link(b, n);
    const char *address = ips[ref->rank];
    handle = jg_xasprintf("pid=%d start=%llu addr=%s dir=%s", (int)pid, start, address, dir);
    queue_event(b, JG_BACKEND_NODE_STARTED, req->group_id, ref->job_index, ref->rank,
                ref->attempt, NULL, handle, false, 0, 0)->address = jg_xstrdup(address);
    n = NULL;
    pid = -1;
    pidfd = -1;
    wd = -1;
    rc = 0;
done:
    if (pid > 0) {          /* started but cannot be followed: undo */
        (void)jg_proc_kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (pidfd >= 0)
        close(pidfd);
    if (wd >= 0) {
        bool shared = false;
        for (node_t *o = b->nodes; o; o = o->next)
            if (o->wd == wd)
                shared = true;
        if (!shared)
            inotify_rm_watch(b->inotify_fd, wd);
    }
    if (fd >= 0)
        close(fd);
    if (errpipe[0] >= 0)
        close(errpipe[0]);
    if (errpipe[1] >= 0)
        close(errpipe[1]);
    if (cg_fd >= 0)
        close(cg_fd);
    if (tmp_fd >= 0)
        close(tmp_fd);
    if (n) {
        free(n->dir);
        free(n);
    }
    jg_gpu_pool_release(b->gpus, gpus, n_gpus);     /* not handed to a node */
    if (cg)
        (void)rmdir(cg);
    free(cg);
    free(binds);
    free(gpu_log);
    for (size_t i = 0; i < n_forced; i++)
        free(forced[i]);
    free(handle);
    jg_env_free(env);
    free(ips);
    free(ip_ptrs);
    free(tmp);
    free(hostname);
    free(blob);
    free(path);
    free(dir);
    free(gdir);
    return rc;
}

static int local_launch(jg_backend_t *base, const jg_launch_t *req, jg_error_t *err)
{
    local_t *b = base->impl;
    if (!req || !req->spec || !req->spec->name || (!req->nodes && req->n_nodes))
        return jg_errprintf(err, "launch: incomplete request");
    for (size_t i = 0; i < req->n_nodes; i++) {
        const jg_node_ref_t *r = &req->nodes[i];
        if (r->job_index < 0 || (size_t)r->job_index >= req->spec->n_jobs)
            return jg_errprintf(err, "launch: group %" PRId64 " has no job %d", req->group_id,
                                r->job_index);
        const jg_job_spec_t *job = &req->spec->jobs[r->job_index];
        if (!job->name || strchr(job->name, '/') || job->name[0] == '.')
            return jg_errprintf(err, "launch: bad job name in group %" PRId64, req->group_id);
        if (r->rank < 0 || r->rank >= job->num_nodes)
            return jg_errprintf(err, "launch: job %s of group %" PRId64 " has no rank %d",
                                job->name, req->group_id, r->rank);
        if (r->attempt < 1)
            return jg_errprintf(err, "launch: bad attempt %d for %s-%d", r->attempt, job->name,
                                r->rank);
    }

    creds_t creds = {0};
    struct passwd pwbuf, *pw = NULL;
    char pwstr[4096];
    if (req->user)
        getpwnam_r(req->user, &pwbuf, pwstr, sizeof pwstr, &pw);
    if (!pw)
        getpwuid_r(req->uid, &pwbuf, pwstr, sizeof pwstr, &pw);
    if (req->uid != geteuid() || req->gid != getegid()) {
        if (geteuid() != 0)
            return jg_errprintf(err, "launch: cannot run nodes as uid %d: the daemon runs "
                                "unprivileged as uid %d", (int)req->uid, (int)geteuid());
        creds.active = true;
        creds.uid = req->uid;
        creds.gid = req->gid;
        creds.n_groups = MAX_GROUPS;
        if (!pw || getgrouplist(pw->pw_name, req->gid, creds.groups, &creds.n_groups) < 0) {
            creds.groups[0] = req->gid;
            creds.n_groups = 1;
        }
    }

    /* The group's network first (its hub, its hosts file): every node joins it. */
    group_net_t gnet = {.hub_pidfd = -1};
    jg_error_t neterr = {{0}};
    bool net_ok = true;
    char *gdir = group_dir(b, req->group_id);
    char *hosts = NULL, *resolv = NULL;
    if ((isolated(b) || b->net.own_mounts) && jg_mkdir_p(gdir, 0711, &neterr) < 0)
        net_ok = false;
    if (net_ok && isolated(b)) {
        gnet_t *g = group_hub(b, req->group_id, &neterr);
        net_ok = g != NULL;
        if (g)
            gnet.hub_pidfd = g->hub.pidfd;
    }
    if (net_ok && b->net.own_mounts) {
        const creds_t none = {0};
        hosts = jg_netns_hosts(req->spec, isolated(b));
        net_ok = write_file(&none, gdir, GROUP_HOSTS, hosts, strlen(hosts), 0644, &neterr) == 0;
        free(hosts);
        hosts = jg_xasprintf("%s/" GROUP_HOSTS, gdir);
        gnet.hosts_path = hosts;
    }
    if (net_ok && b->nat && b->net.own_mounts) {
        /* Read at each launch: the host's resolvers may have changed since. */
        char host[8192], upstream[8192];
        const creds_t none = {0};
        bool have_host = read_small("/etc/resolv.conf", host, sizeof host) >= 0;
        bool have_up = read_small("/run/systemd/resolve/resolv.conf", upstream,
                                  sizeof upstream) >= 0;
        char *text = jg_netns_resolv_conf(have_host ? host : NULL, have_up ? upstream : NULL);
        net_ok = write_file(&none, gdir, GROUP_RESOLV, text, strlen(text), 0644, &neterr) == 0;
        free(text);
        resolv = jg_xasprintf("%s/" GROUP_RESOLV, gdir);
        gnet.resolv_path = resolv;
    }

    /* Every node in one pass; none waits for another. */
    for (size_t i = 0; i < req->n_nodes; i++) {
        const jg_node_ref_t *r = &req->nodes[i];
        jg_error_t e = {{0}};
        if (!net_ok)
            jg_errprintf(&e, "cannot set up the group's network: %s", neterr.text);
        if (!net_ok || launch_one(b, req, r, &creds, pw, &gnet, &e) < 0)
            queue_event(b, JG_BACKEND_LAUNCH_FAILED, req->group_id, r->job_index, r->rank,
                        r->attempt, e.text, NULL, false, 0, 0);
    }
    free(hosts);
    free(resolv);
    free(gdir);
    return 0;
}

/* ---- release, stop ------------------------------------------------------ */

static int write_fifo(const node_t *n, char c, jg_error_t *err)
{
    char *path = jg_xasprintf("%s/%s", n->dir, JG_SHIM_RELEASE);
    /* The node's user may have put a link or a file of someone else's there:
     * only the FIFO itself, with no other name, gets the byte. */
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    int rc = 0;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) || st.st_nlink != 1))
        rc = jg_errprintf(err, "refusing %s: it is not the node's FIFO", path);
    else if (fd < 0 || write(fd, &c, 1) != 1)
        rc = jg_errprintf(err, "cannot write to %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

static int local_release(jg_backend_t *base, int64_t group_id, jg_error_t *err)
{
    local_t *b = base->impl;
    int rc = 0;
    for (node_t *n = b->nodes; n; n = n->next) {
        if (n->group_id != group_id || n->superseded || n->quiet || !n->reported_setup_done ||
            n->released || n->reported_final)
            continue;
        jg_error_t e;
        if (write_fifo(n, JG_SHIM_RELEASE_RUN, &e) < 0) {
            if (rc == 0)
                rc = jg_errprintf(err, "release of group %" PRId64 ": %s", group_id, e.text);
            continue;
        }
        n->released = true;
    }
    return rc;
}

static bool matches(const node_t *n, int64_t group_id, int job_index, int rank)
{
    return n->group_id == group_id && (job_index < 0 || n->job_index == job_index) &&
           (rank < 0 || n->rank == rank);
}

static void on_stop_timer(jg_loop_t *loop, void *arg)
{
    (void)loop;
    stop_timer_t *t = arg;
    local_t *b = t->b;
    for (node_t *n = b->nodes; n; n = n->next)
        if (n->stopping && matches(n, t->group_id, t->job_index, t->rank))
            kill_node_tree(b, n->pid, n->start);
    for (stop_timer_t **pp = &b->stops; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    free(t);
}

static void stop_wait_add(local_t *b, int64_t group_id, int job_index, int rank);

static int local_stop(jg_backend_t *base, int64_t group_id, int job_index, int rank,
                      int grace_ms, jg_error_t *err)
{
    (void)err;
    local_t *b = base->impl;
    bool any = false;
    for (node_t *n = b->nodes; n; n = n->next) {
        if (!matches(n, group_id, job_index, rank))
            continue;
        any = true;
        n->stopping = true;
        if (grace_ms > 0)
            (void)jg_proc_kill(-n->pid, SIGTERM);
        else
            kill_node_tree(b, n->pid, n->start);
        if (!n->superseded && !n->released)
            write_fifo(n, JG_SHIM_RELEASE_CANCEL, NULL);
    }
    stop_wait_add(b, group_id, job_index, rank);
    if (any && grace_ms > 0) {
        stop_timer_t *t = jg_xcalloc(1, sizeof *t);
        t->b = b;
        t->group_id = group_id;
        t->job_index = job_index;
        t->rank = rank;
        t->id = jg_loop_add_timer(b->loop, grace_ms, on_stop_timer, t);
        t->next = b->stops;
        b->stops = t;
    }
    return 0;
}

/* ---- logs, cleanup ------------------------------------------------------ */

/* Reads back the "attempts" lines of a node directory (shim_protocol.h): a
 * bounded, non-blocking read of a regular file, parsed line by line; anything
 * odd ends the list where it is. */
static size_t read_attempts_file(const char *dir, attempt_start_t *out, size_t max)
{
    if (max == 0)
        return 0;
    jg_error_t err;
    int fd = open_node_file(dir, JG_SHIM_ATTEMPTS, O_RDONLY, 0, NULL, &err);
    if (fd < 0)
        return 0;
    char buf[ATTEMPTS_FILE_MAX + 1];
    ssize_t r = read(fd, buf, ATTEMPTS_FILE_MAX);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    size_t n = 0;
    char *line = buf;
    while (n < max) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        int attempt;
        long long offset;
        char extra;
        if (sscanf(line, "%d %lld%c", &attempt, &offset, &extra) != 2 || attempt < 1 ||
            offset < 0 || (n > 0 && (attempt <= out[n - 1].attempt ||
                                     offset < out[n - 1].offset)))
            break;
        out[n++] = (attempt_start_t){.attempt = attempt, .offset = offset};
        line = nl + 1;
    }
    return n;
}

/* Removes a node directory's runtime files: everything but output.log and status.
 * Its work and tmp trees are the user's: they go to the trash (fsutil.h),
 * moved through the node directory's descriptor and deleted off the loop. */
static int clean_node_dir(local_t *b, const char *dir, jg_error_t *err)
{
    static const char *const names[] = {
        JG_SHIM_ENV, JG_SHIM_SETUP, JG_SHIM_RUN, JG_SHIM_WORKDIR, JG_SHIM_RELEASE,
        "." JG_SHIM_ENV ".tmp", "." JG_SHIM_SETUP ".tmp", "." JG_SHIM_RUN ".tmp",
        "." JG_SHIM_WORKDIR ".tmp",
    };
    static const char *const trees[] = {JG_SHIM_WORK, NODE_TMP};
    int rc = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *path = jg_xasprintf("%s/%s", dir, names[i]);
        if (unlink(path) < 0 && errno != ENOENT && rc == 0)
            rc = jg_errprintf(err, "cannot remove %s: %s", path, strerror(errno));
        free(path);
    }
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return rc == 0 && errno != ENOENT ? jg_errprintf(err, "cannot open %s: %s", dir,
                                                         strerror(errno)) : rc;
    for (size_t i = 0; i < sizeof trees / sizeof trees[0]; i++) {
        jg_error_t e;
        if (jg_trash_put(b->trash, dfd, trees[i], &e) < 0 && rc == 0)
            rc = jg_errprintf(err, "%s: %s", dir, e.text);
    }
    close(dfd);
    return rc;
}

/* Removes the group's hub (its keeper, followed or only recorded) and the
 * files that described it. */
static int cleanup_network(local_t *b, int64_t group_id, const char *gdir, jg_error_t *err)
{
    int rc = 0;
    gnet_t *g = gnet_find(b, group_id);
    jg_netns_hub_t hub;
    pid_t pid;
    unsigned long long start;
    if (g)
        rc = gnet_free(b, g, true, err);
    else if (read_net_file(b, group_id, &pid, &start) == 0 &&
             jg_netns_hub_open(pid, start, &hub, NULL) == 0)
        rc = jg_netns_hub_destroy(&hub, CLEANUP_WAIT_MS, err);
    const char *names[] = {GROUP_NET, GROUP_HOSTS, GROUP_RESOLV, "." GROUP_NET ".tmp",
                           "." GROUP_HOSTS ".tmp", "." GROUP_RESOLV ".tmp", GROUP_MOUNTS};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *path = jg_xasprintf("%s/%s", gdir, names[i]);
        if (unlink(path) < 0 && errno != ENOENT && rc == 0)
            rc = jg_errprintf(err, "cannot remove %s: %s", path, strerror(errno));
        free(path);
    }
    return rc;
}

/* Everything cleanup() removes, done at once (sweep() uses it too, quietly). */
static int cleanup_group(local_t *b, int64_t group_id, jg_error_t *err)
{
    int rc = 0;
    char *gdir = group_dir(b, group_id);
    DIR *d = NULL;

    /* Kill every live node of the group and wait (briefly) for the shims to die. */
    size_t count = 0;
    for (node_t *n = b->nodes; n; n = n->next)
        if (n->group_id == group_id)
            count++;
    node_t **live = jg_xcalloc(count ? count : 1, sizeof *live);
    count = 0;
    for (node_t *n = b->nodes; n; n = n->next) {
        if (n->group_id == group_id) {
            n->quiet = true;
            kill_node_tree(b, n->pid, n->start);
            live[count++] = n;
        }
    }
    int64_t deadline = jg_now_mono_ms() + CLEANUP_WAIT_MS;
    for (size_t i = 0; i < count; i++) {
        struct pollfd pfd = {.fd = live[i]->pidfd, .events = POLLIN};
        int64_t left = deadline - jg_now_mono_ms();
        if (poll(&pfd, 1, left > 0 ? (int)left : 0) == 1)
            node_dead(b, live[i]);      /* quiet: reaps and frees, reports nothing */
    }
    free(live);
    /* The shims nobody follows (the daemon restarted in between), from our
     * own record; their cgroups go next, with anything that left them. */
    kill_recorded_shims(b, gdir);
    char *record = jg_xasprintf("%s/%s", gdir, GROUP_SHIMS);
    if (unlink(record) < 0 && errno != ENOENT && rc == 0)
        rc = jg_errprintf(err, "cannot remove %s: %s", record, strerror(errno));
    free(record);
    cg_group_remove(b, group_id, CLEANUP_WAIT_MS);

    jg_error_t e;
    d = opendir(gdir);
    if (!d) {
        if (errno != ENOENT)
            rc = jg_errprintf(err, "cannot read %s: %s", gdir, strerror(errno));
        if (cleanup_network(b, group_id, gdir, &e) < 0 && rc == 0)
            rc = jg_errprintf(err, "%s", e.text);
        goto done;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *dir = jg_xasprintf("%s/%s", gdir, de->d_name);
        struct stat st;
        if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (clean_node_dir(b, dir, &e) < 0 && rc == 0)
                rc = jg_errprintf(err, "%s", e.text);
        }
        free(dir);
    }
    if (cleanup_network(b, group_id, gdir, &e) < 0 && rc == 0)
        rc = jg_errprintf(err, "%s", e.text);
done:
    if (d)
        closedir(d);
    free(gdir);
    return rc;
}

/* ---- reattach ----------------------------------------------------------- */

/* Follows the hub of a group whose nodes run again; if its keeper died
 * while nobody watched, the nodes have no network left: they are lost. */
static void reattach_network(local_t *b, int64_t group_id)
{
    bool any = false;
    for (node_t *n = b->nodes; n; n = n->next)
        if (n->group_id == group_id && !n->reported_final)
            any = true;
    pid_t pid;
    unsigned long long start;
    if (!any || !isolated(b) || gnet_find(b, group_id) ||
        read_net_file(b, group_id, &pid, &start) < 0)
        return;
    jg_netns_hub_t hub;
    jg_error_t e;
    if (jg_netns_hub_open(pid, start, &hub, &e) == 0 && gnet_watch(b, group_id, &hub, &e))
        return;
    char *reason = jg_xasprintf("the group's network is gone (%s)", e.text);
    lose_group_nodes(b, group_id, reason);
    free(reason);
}

/* A node found again: its cgroup, and (while it runs) the GPUs its attempt
 * was given, from its gpus file. */
static void reattach_resources(local_t *b, node_t *n, int64_t group_id, bool alive)
{
    if (b->cg_base) {
        char *cg = cg_node_path(b, group_id, n->dir, n->attempt);
        struct stat st;
        if (stat(cg, &st) == 0)
            n->cgroup = cg;
        else
            free(cg);
    }
    /* The GPUs our record gave this very shim: the node's own gpus file is
     * its user's, who could name any GPU there. */
    char gpus[sizeof ((shim_rec_t *)0)->gpus] = "";
    if (!alive)
        return;
    char *gdir = group_dir(b, group_id);
    size_t count = 0;
    shim_rec_t *v = read_shim_records(gdir, &count);
    const char *name = strrchr(n->dir, '/');
    for (size_t i = 0; name && i < count; i++)
        if (v[i].attempt == n->attempt && v[i].pid == n->pid && v[i].start == n->start &&
            strcmp(v[i].node, name + 1) == 0)
            snprintf(gpus, sizeof gpus, "%s", v[i].gpus);
    free(v);
    free(gdir);
    int idx[MAX_GPUS_PER_NODE];
    size_t k = 0;
    for (char *p = gpus; k < MAX_GPUS_PER_NODE && *p >= '0' && *p <= '9';) {
        int i = (int)strtol(p, &p, 10);
        if (jg_gpu_pool_claim(b->gpus, i) == 0)
            idx[k++] = i;
        else
            jg_log("warn", "group %" PRId64 ": %s holds GPU %d, which is unknown or taken",
                   group_id, n->dir, i);
        if (*p == ',')
            p++;
    }
    if (k) {
        n->gpus = jg_xmalloc(k * sizeof *n->gpus);
        memcpy(n->gpus, idx, k * sizeof *idx);
        n->n_gpus = k;
    }
}

static int local_reattach(jg_backend_t *base, int64_t group_id, const jg_node_handle_t *nodes,
                          size_t n_nodes, jg_error_t *err)
{
    local_t *b = base->impl;
    if (!nodes && n_nodes)
        return jg_errprintf(err, "reattach: no nodes given");
    for (size_t i = 0; i < n_nodes; i++) {
        const jg_node_handle_t *h = &nodes[i];
        bool known = false;
        for (node_t *o = b->nodes; o; o = o->next)
            if (o->group_id == group_id && o->job_index == h->job_index &&
                o->rank == h->rank && o->attempt == h->attempt)
                known = true;
        if (known)
            continue;

        int pid = 0;
        unsigned long long start = 0;
        const char *dir = h->handle ? strstr(h->handle, " dir=") : NULL;
        if (!dir || sscanf(h->handle, "pid=%d start=%llu", &pid, &start) != 2 || pid <= 0 ||
            dir[5] != '/') {
            char *reason = jg_xasprintf("cannot reattach: unreadable node handle \"%s\"",
                                        h->handle ? h->handle : "");
            queue_event(b, JG_BACKEND_NODE_LOST, group_id, h->job_index, h->rank, h->attempt,
                        reason, NULL, false, 0, 0);
            free(reason);
            continue;
        }
        node_t *n = node_new(b, group_id, h->job_index, h->rank, h->attempt, dir + 5);
        n->pid = pid;
        n->start = start;
        n->stream.resume_set = true;        /* what the core already has */
        n->stream.offset = h->log_bytes > 0 ? h->log_bytes : 0;

        /* Open the pidfd first, then check the start time: if it matches, the
         * pidfd is our shim and cannot be confused with a later process. */
        unsigned long long now_start = 0;
        n->pidfd = jg_proc_pidfd_open(pid);
        bool alive = n->pidfd >= 0 && jg_proc_starttime(pid, &now_start) == 0 && now_start == start;
        if (alive) {
            char *status = jg_xasprintf("%s/%s", n->dir, JG_SHIM_STATUS);
            n->wd = inotify_add_watch(b->inotify_fd, status, IN_MODIFY | IN_DONT_FOLLOW);
            free(status);
            if (n->wd < 0 || jg_loop_add_fd(b->loop, n->pidfd, EPOLLIN, on_pidfd, n, NULL) < 0)
                alive = false;
        }
        reattach_resources(b, n, group_id, alive);
        node_link(b, n);
        n->shim_gone = !alive;
        if (!alive)
            stream_drain(n);
        read_status(n);
        report(n, true);
        if (!alive) {
            if (n->pidfd >= 0) {
                close(n->pidfd);
                n->pidfd = -1;
            }
            if (!n->reported_final) {
                char *reason = jg_xasprintf("node process tree is gone (shim pid %d no longer "
                                            "runs and recorded no exit)", pid);
                n->reported_final = true;
                node_event(n, JG_BACKEND_NODE_LOST, reason, false, 0, 0);
                free(reason);
            }
            node_free(b, n);
        }
    }
    reattach_network(b, group_id);
    return 0;
}

/* ---- sweep, warning ------------------------------------------------------ */

/* Whether a group directory (or the instance's cgroup) still holds
 * something cleanup() removes. */
static bool has_leftovers(const local_t *b, int64_t group_id, const char *gdir)
{
    char *net = jg_xasprintf("%s/%s", gdir, GROUP_NET);
    char *mounts = jg_xasprintf("%s/%s", gdir, GROUP_MOUNTS);
    char *shims = jg_xasprintf("%s/%s", gdir, GROUP_SHIMS);
    bool found = access(net, F_OK) == 0 || access(mounts, F_OK) == 0 ||
                 access(shims, F_OK) == 0 || cg_group_exists(b, group_id);
    free(net);
    free(mounts);
    free(shims);
    DIR *d = found ? NULL : opendir(gdir);
    struct dirent *de;
    while (d && !found && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        static const char *const names[] = {JG_SHIM_ENV, JG_SHIM_RELEASE, JG_SHIM_WORK, NODE_TMP};
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !found; i++) {
            char *path = jg_xasprintf("%s/%s/%s", gdir, de->d_name, names[i]);
            struct stat st;
            found = lstat(path, &st) == 0;
            free(path);
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* Reads at most cap - 1 bytes of a /proc file into buf (NUL-terminated);
 * the length, or -1. */
static ssize_t read_proc_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

/* The group a process keeps the network of, when it is a keeper of this
 * instance: it runs as the daemon's user (every uid), its executable is the
 * very file the backend holds open as its shim (device and inode), and its
 * argv is exactly "<shim> --hold <state dir>/groups/<id>".  All three are
 * the kernel's word, which a user cannot forge: only the daemon's user (root,
 * for a system daemon) can run its shim as itself.  -1 if it is not one. */
static long long keeper_group(const local_t *b, const struct stat *shim, long pid)
{
    char path[64], buf[PATH_MAX + 64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%ld/exe", pid);
    if (stat(path, &st) < 0 || st.st_dev != shim->st_dev || st.st_ino != shim->st_ino)
        return -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    if (read_proc_file(path, buf, sizeof buf) < 0)
        return -1;
    const char *uids = strstr(buf, "\nUid:");
    unsigned u[4];
    uid_t me = geteuid();
    if (!uids || sscanf(uids, "\nUid: %u %u %u %u", &u[0], &u[1], &u[2], &u[3]) != 4 ||
        u[0] != me || u[1] != me || u[2] != me || u[3] != me)
        return -1;
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    ssize_t n = read_proc_file(path, buf, sizeof buf);
    if (n <= 0 || buf[n - 1] != '\0')
        return -1;
    const char *arg1 = buf + strlen(buf) + 1;
    if (arg1 >= buf + n || strcmp(arg1, "--hold") != 0)
        return -1;
    const char *dir = arg1 + strlen(arg1) + 1;
    if (dir >= buf + n || dir + strlen(dir) + 1 != buf + n)
        return -1;          /* not exactly three arguments */
    size_t plen = strlen(b->state_dir);
    if (strncmp(dir, b->state_dir, plen) != 0 || strncmp(dir + plen, "/groups/", 8) != 0)
        return -1;
    const char *digits = dir + plen + 8;
    char *end;
    errno = 0;
    long long id = strtoll(digits, &end, 10);
    if (*digits < '0' || *digits > '9' || *end || errno || id < 0)
        return -1;
    return id;
}

/* Kills the keepers of this instance that neither a followed hub nor a
 * group's net record names: a daemon killed between forking a keeper and
 * recording it (or while cleaning a group up) leaves one that no record will
 * ever lead back to.  Runs at start-up, before any launch of this daemon, so
 * no keeper is between its fork and its record meanwhile. */
static int sweep_stray_keepers(local_t *b, jg_error_t *err)
{
    struct stat shim;
    if (!isolated(b) || fstat(b->shim_fd, &shim) < 0)
        return 0;
    DIR *d = opendir("/proc");
    if (!d)
        return jg_errprintf(err, "sweep: cannot read /proc: %s", strerror(errno));
    int rc = 0;
    pid_t self = getpid();
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        unsigned long long start = 0, now = 0;
        if (*end || pid <= 0 || pid == self || jg_proc_starttime((pid_t)pid, &start) < 0)
            continue;
        long long id = keeper_group(b, &shim, pid);
        if (id < 0)
            continue;
        gnet_t *g = gnet_find(b, (int64_t)id);
        pid_t recorded;
        unsigned long long recorded_start;
        if ((g && g->hub.pid == (pid_t)pid) ||
            (read_net_file(b, (int64_t)id, &recorded, &recorded_start) == 0 &&
             recorded == (pid_t)pid && recorded_start == start))
            continue;
        /* Same start time after the checks: the process checked is the one killed. */
        jg_netns_hub_t hub;
        jg_error_t e;
        if (jg_proc_starttime((pid_t)pid, &now) < 0 || now != start ||
            jg_netns_hub_open((pid_t)pid, start, &hub, NULL) < 0)
            continue;
        jg_log("info", "sweep: killing the network keeper (pid %ld) of group %lld, which no "
               "record names (the daemon died while it was made)", pid, id);
        if (jg_netns_hub_destroy(&hub, CLEANUP_WAIT_MS, &e) < 0 && rc == 0)
            rc = jg_errprintf(err, "sweep: %s", e.text);
        /* Nodes found again that were joined to it have lost their network. */
        lose_group_nodes(b, (int64_t)id, "the group's network is gone (the daemon died "
                         "while it was being made)");
    }
    closedir(d);
    return rc;
}

static int local_sweep(jg_backend_t *base, const int64_t *live, size_t n_live, jg_error_t *err)
{
    local_t *b = base->impl;
    int rc = sweep_stray_keepers(b, err);
    char *groups = jg_xasprintf("%s/groups", b->state_dir);
    DIR *d = opendir(groups);
    if (!d) {
        if (errno != ENOENT)
            rc = jg_errprintf(err, "sweep: cannot read %s: %s", groups, strerror(errno));
        free(groups);
        return rc;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        errno = 0;
        long long id = strtoll(de->d_name, &end, 10);
        if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end || errno)
            continue;
        bool is_live = false;
        for (size_t i = 0; i < n_live && !is_live; i++)
            is_live = live[i] == (int64_t)id;
        if (is_live)
            continue;
        char *gdir = jg_xasprintf("%s/%s", groups, de->d_name);
        jg_error_t e;
        if (has_leftovers(b, (int64_t)id, gdir)) {
            jg_log("info", "sweep: removing what group %lld left behind", id);
            if (cleanup_group(b, (int64_t)id, &e) < 0 && rc == 0)
                rc = jg_errprintf(err, "sweep: group %lld: %s", id, e.text);
        }
        free(gdir);
    }
    closedir(d);
    free(groups);
    /* Node cgroups of groups whose directory is gone altogether (purged). */
    DIR *cgd = b->cg_base ? opendir(b->cg_base) : NULL;
    while (cgd && (de = readdir(cgd))) {
        long long id;
        bool is_live = false;
        if (sscanf(de->d_name, "g%lld-", &id) != 1)
            continue;
        for (size_t i = 0; i < n_live && !is_live; i++)
            is_live = live[i] == (int64_t)id;
        if (!is_live) {
            char *cg = jg_xasprintf("%s/%s", b->cg_base, de->d_name);
            cg_node_remove(cg, CLEANUP_WAIT_MS);
            free(cg);
        }
    }
    if (cgd)
        closedir(cgd);
    return rc;
}

static const char *local_warning(jg_backend_t *base)
{
    local_t *b = base->impl;
    return b->warning;
}

static const char *local_notes(jg_backend_t *base)
{
    local_t *b = base->impl;
    return b->notes;
}

/* notes(): how nodes are held to their resources, one line. */
static char *make_notes(const local_t *b, const char *cg_why)
{
    char *cg = b->cg_base ? jg_xasprintf("cgroups: v2, a cgroup per node under %s (cpu.max "
                                         "from its cpus, memory.max from its memory)",
                                         b->cg_base)
                          : jg_xasprintf("cgroups: unavailable (%s); nodes are not limited",
                                         cg_why);
    char *gpus;
    if (b->gpus_known) {
        char types[256] = "";
        size_t off = 0;
        for (size_t i = 0; i < b->gpus->n && off < sizeof types; i++) {
            bool seen = false;
            for (size_t k = 0; k < i; k++)
                seen = seen || strcasecmp(b->gpus->v[k].name, b->gpus->v[i].name) == 0;
            if (!seen)
                off += (size_t)snprintf(types + off, sizeof types - off, "%s%s x%zu",
                                        off ? ", " : "", b->gpus->v[i].name,
                                        jg_gpu_pool_count(b->gpus, b->gpus->v[i].name, false));
        }
        gpus = jg_xasprintf("GPUs: %s, handed out by index (CUDA_VISIBLE_DEVICES)", types);
    } else if (b->capacity.n_accels) {
        gpus = jg_xasprintf("GPUs: declared in the config, but no index is known (%s): nodes "
                            "get no CUDA_VISIBLE_DEVICES", b->gpus_why);
    } else {
        gpus = jg_xasprintf("GPUs: none (%s)", b->gpus_why);
    }
    char *notes = jg_xasprintf("%s; %s; %s", cg, gpus, b->nat_note);
    free(cg);
    free(gpus);
    return notes;
}

/* ---- create, destroy ---------------------------------------------------- */

/* Decides whether hubs get an uplink, and prepares the host for it.  Fails
 * only on a bad nat_network; a host that refuses NAT is noted and logged. */
static int setup_nat(local_t *b, const jg_local_config_t *cfg, jg_error_t *err)
{
    const char *network = cfg->nat_network ? cfg->nat_network : JG_NETNS_UPLINK_DEFAULT;
    char why[200], firewall[512];
    if (jg_netns_uplink_parse(network, &b->uplink, why, sizeof why) < 0)
        return jg_errprintf(err, "local backend: nat_network: %s", why);
    jg_error_t e = {{0}};
    if (!isolated(b))
        b->nat_note = jg_xstrdup("outbound: the host's own network (nodes share it)");
    else if (!cfg->nat)
        b->nat_note = jg_xstrdup("outbound: none, NAT is off by configuration "
                                 "(backends.local.nat); nodes reach only their own group");
    else if (b->net.mode != JG_NETNS_ROOT)
        b->nat_note = jg_xstrdup("outbound: none, NAT needs a daemon running as root; nodes "
                                 "reach only their own group");
    else if (jg_netns_nat_host_enable(firewall, sizeof firewall, &e) < 0) {
        b->nat_note = jg_xasprintf("outbound: none (%s); nodes reach only their own group",
                                   e.text);
        jg_log("warn", "local backend: %s", b->nat_note);
    } else {
        b->nat = true;
        b->nat_note = jg_xasprintf("outbound: NAT, each group's uplink from %s (nftables table "
                                   "ip jgsched, IPv4 forwarding on)%s%s", network,
                                   firewall[0] ? ", but " : "", firewall);
        if (firewall[0])
            jg_log("warn", "local backend: outbound NAT is on, but %s", firewall);
    }
    return 0;
}

static void stop_wait_free(local_t *b, stop_wait_t *w);

static void local_destroy(jg_backend_t *base)
{
    if (!base)
        return;
    local_t *b = base->impl;
    jg_capacity_clear(&b->capacity);
    /* Nodes and hubs keep running: the daemon may be restarting and will reattach. */
    while (b->nodes)
        node_free(b, b->nodes);     /* before the GPU pool they return to goes */
    jg_gpu_pool_destroy(b->gpus);
    free(b->cg_base);
    free(b->nat_note);
    free(b->notes);
    while (b->gnets)
        gnet_free(b, b->gnets, false, NULL);
    while (b->stops) {
        stop_timer_t *t = b->stops;
        b->stops = t->next;
        jg_loop_cancel_timer(b->loop, t->id);
        free(t);
    }
    if (b->flush_timer)
        jg_loop_cancel_timer(b->loop, b->flush_timer);
    if (b->stream_timer)
        jg_loop_cancel_timer(b->loop, b->stream_timer);
    while (b->stop_waits)
        stop_wait_free(b, b->stop_waits);
    for (size_t i = b->q_head; i < b->q_len; i++) {
        free(b->queue[i].reason);
        free(b->queue[i].handle);
        free(b->queue[i].address);
        free(b->queue[i].data);
    }
    free(b->queue);
    if (b->inotify_fd >= 0) {
        jg_loop_del_fd(b->loop, b->inotify_fd);
        close(b->inotify_fd);
    }
    if (b->shim_fd >= 0)
        close(b->shim_fd);
    jg_trash_close(b->trash);
    free(b->state_dir);
    free(b->shim_path);
    free(b->warning);
    free(b->base.name);
    free(b);
}

/* An executable's absolute path: as given when it names a file, else from
 * $PATH.  NULL if no executable is found. */
static char *resolve_exec(const char *name)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? realpath(name, NULL) : NULL;
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char *copy = jg_xstrdup(path), *save = NULL, *found = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char *cand = jg_xasprintf("%s/%s", dir, name);
        if (access(cand, X_OK) == 0)
            found = realpath(cand, NULL);
        free(cand);
    }
    free(copy);
    return found;
}

static void describe_host_node(local_t *b);

jg_backend_t *jg_backend_local_create(const jg_local_config_t *cfg, jg_error_t *err)
{
    local_t *b = NULL;
    char *groups = NULL;
    if (!cfg || !cfg->state_dir || !cfg->shim_path || !cfg->loop || !cfg->on_event) {
        jg_errprintf(err, "local backend: incomplete configuration");
        goto fail;
    }
    groups = jg_xasprintf("%s/groups", cfg->state_dir);
    if (jg_mkdir_p(groups, 0711, err) < 0)
        goto fail;
    b = jg_xcalloc(1, sizeof *b);
    b->base.ops = &local_ops;
    b->base.impl = b;
    b->base.name = jg_xstrdup("local");
    b->inotify_fd = -1;
    b->shim_fd = -1;
    b->state_dir = realpath(cfg->state_dir, NULL);
    if (!b->state_dir) {
        jg_errprintf(err, "local backend: cannot resolve %s: %s", cfg->state_dir,
                     strerror(errno));
        goto fail;
    }
    b->shim_path = resolve_exec(cfg->shim_path);
    if (!b->shim_path) {
        jg_errprintf(err, "local backend: cannot find an executable shim at %s (build "
                     "jgsched-shim, or point JGSCHED_SHIM at it)", cfg->shim_path);
        goto fail;
    }
    b->shim_fd = open(b->shim_path, O_PATH | O_CLOEXEC);
    if (b->shim_fd < 0) {
        jg_errprintf(err, "local backend: cannot open %s: %s", b->shim_path, strerror(errno));
        goto fail;
    }
    b->loop = cfg->loop;
    char *trash = jg_xasprintf("%s/%s", b->state_dir, TRASH_DIR);
    b->trash = jg_trash_create(trash, b->loop);
    free(trash);
    b->on_event = cfg->on_event;
    b->event_ctx = cfg->event_ctx;
    b->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (b->inotify_fd < 0) {
        jg_errprintf(err, "local backend: inotify_init1: %s", strerror(errno));
        goto fail;
    }
    if (jg_loop_add_fd(b->loop, b->inotify_fd, EPOLLIN, on_inotify, b, err) < 0) {
        close(b->inotify_fd);
        b->inotify_fd = -1;
        goto fail;
    }

    /* What nodes get, decided once: nothing in the core depends on it. */
    jg_netns_probe(&b->net);
    if (cfg->share_host_network) {
        /* Root still gives every node its hostname, /etc/hosts and /tmp. */
        b->net.own_mounts = b->net.mode == JG_NETNS_ROOT;
        b->net.mode = JG_NETNS_HOST;
        b->warning = jg_xasprintf("network isolation is off by configuration: nodes share the "
                                  "host network, %s and two nodes cannot listen on the same "
                                  "port", b->net.own_mounts ? "every hostname resolves to "
                                  "127.0.0.1" : "hostnames do not resolve");
    } else {
        if (b->net.mode == JG_NETNS_HOST && b->net.own_mounts)
            b->warning = jg_xasprintf("nodes share the host network (%s): every hostname "
                                      "resolves to 127.0.0.1 and two nodes cannot listen on "
                                      "the same port", b->net.why);
        else if (b->net.mode == JG_NETNS_HOST)
            b->warning = jg_xasprintf("nodes share the host network and its /etc/hosts (%s): "
                                      "hostnames do not resolve and two nodes cannot listen "
                                      "on the same port", b->net.why);
    }
    if (b->warning)
        jg_log("warn", "local backend: %s", b->warning);
    if (setup_nat(b, cfg, err) < 0)
        goto fail;
    if (cfg->capacity) {
        jg_capacity_copy(&b->capacity, cfg->capacity);
    } else {
        jg_capacity_detect_host(&b->capacity);
    }
    detect_gpus(b);
    if (!cfg->capacity || cfg->host_gpus)
        add_pool_to_capacity(b);
    describe_host_node(b);
    char cg_why[320] = "";
    struct stat cst;
    if (cfg->cgroups_off)
        snprintf(cg_why, sizeof cg_why, "off by configuration (backends.local.cgroups)");
    else if (cfg->cgroup_dir && stat(cfg->cgroup_dir, &cst) == 0 && S_ISDIR(cst.st_mode))
        b->cg_base = jg_xstrdup(cfg->cgroup_dir);
    else if (cfg->cgroup_dir)
        snprintf(cg_why, sizeof cg_why, "the configured cgroup %s is not a directory",
                 cfg->cgroup_dir);
    else
        cg_probe(b, cg_why, sizeof cg_why);
    b->notes = make_notes(b, cg_why);
    jg_log("info", "local backend: %s", b->notes);
    free(groups);
    return &b->base;
fail:
    free(groups);
    if (b)
        local_destroy(&b->base);
    return NULL;
}

static const jg_capacity_t *local_capacity(jg_backend_t *base)
{
    local_t *b = base->impl;
    return &b->capacity;
}

/* Defined in the sections after the table. */
static jg_fit_t local_fit(jg_backend_t *base, const jg_group_spec_t *spec, const jg_usage_t *held,
                          char *why, size_t len);
static int local_cleanup(jg_backend_t *base, int64_t group_id, jg_error_t *err);

static const jg_backend_ops_t local_ops = {
    .kind = "local",
    .fit = local_fit,
    .capacity = local_capacity,
    .launch = local_launch,
    .release = local_release,
    .stop = local_stop,
    .reattach = local_reattach,
    .cleanup = local_cleanup,
    .sweep = local_sweep,
    .warning = local_warning,
    .notes = local_notes,
    .destroy = local_destroy,
};

/* ---- output streams -------------------------------------------------------
 *
 * A node's output.log is the node's user's file: it is opened once, by
 * open_node_file (no link, no FIFO, a regular file of its own), and the
 * descriptor kept; new bytes are read on a timer while the node lives
 * (STREAM_TICK_MS, at most STREAM_TICK_MAX bytes a node a tick, again at once
 * when a node had more) and drained when it ends, before its final event, so
 * the core holds all of a node's output by the time it learns of its end.
 * Each piece is tagged with the attempt whose output it is: bytes before
 * this attempt's start (the node's `attempts` file) belong to earlier ones,
 * which only happens after a reattach that resumes behind them. */

#define STREAM_TICK_MS 100
#define STREAM_TICK_MAX (256 * 1024)        /* bytes a node a tick */
#define STREAM_DRAIN_MAX (64 * 1024 * 1024) /* bytes read at a node's end, at most */
#define STREAM_MAX_ATTEMPTS 64

static void stream_tick(jg_loop_t *loop, void *arg);

static void stream_arm(local_t *b, int64_t delay_ms)
{
    if (!b->stream_timer)
        b->stream_timer = jg_loop_add_timer(b->loop, delay_ms, stream_tick, b);
}

static void stream_close(node_t *n)
{
    if (n->stream.fd >= 0)
        close(n->stream.fd);
    n->stream.fd = -1;
}

/* Opens output.log once; false when it is not there (yet) or was refused. */
static bool stream_open(node_t *n)
{
    if (n->stream.fd >= 0)
        return true;
    if (n->stream.refused)
        return false;
    jg_error_t err;
    int fd = open_node_file(n->dir, JG_SHIM_LOG, O_RDONLY, 0, NULL, &err);
    if (fd < 0) {
        if (errno != ENOENT) {
            n->stream.refused = true;       /* once: the user may provoke it at will */
            jg_log("warn", "group %" PRId64 ": its output is not collected: %s", n->group_id,
                   err.text);
        }
        return false;
    }
    n->stream.fd = fd;
    attempt_start_t at[STREAM_MAX_ATTEMPTS];
    size_t k = read_attempts_file(n->dir, at, STREAM_MAX_ATTEMPTS);
    for (size_t i = 0; i < k; i++)
        if (at[i].attempt == n->attempt)
            n->stream.attempt_start = at[i].offset;
    if (!n->stream.resume_set)
        n->stream.offset = n->stream.attempt_start;
    return true;
}

/* The attempt that wrote the byte at offset, and where its output ends
 * (INT64_MAX: open-ended). */
static int stream_attempt_at(const node_t *n, int64_t offset, int64_t *ends)
{
    *ends = INT64_MAX;
    if (offset >= n->stream.attempt_start)
        return n->attempt;
    *ends = n->stream.attempt_start;
    attempt_start_t at[STREAM_MAX_ATTEMPTS];
    size_t k = read_attempts_file(n->dir, at, STREAM_MAX_ATTEMPTS);
    int attempt = 1;
    for (size_t i = 0; i < k; i++) {
        if (at[i].offset <= offset)
            attempt = at[i].attempt;
        else if (at[i].offset < *ends) {
            *ends = at[i].offset;
            break;
        }
    }
    return attempt < n->attempt ? attempt : n->attempt;
}

/* Reads at most max new bytes of the node's output into LOG events; returns
 * how many. */
static size_t stream_read(node_t *n, size_t max)
{
    if (n->quiet || !stream_open(n))
        return 0;
    size_t total = 0;
    char *buf = jg_xmalloc(64 * 1024);
    while (total < max) {
        int64_t ends;
        int attempt = stream_attempt_at(n, n->stream.offset, &ends);
        size_t want = 64 * 1024;
        if (want > max - total)
            want = max - total;
        if (ends != INT64_MAX && (int64_t)want > ends - n->stream.offset)
            want = (size_t)(ends - n->stream.offset);
        ssize_t r = pread(n->stream.fd, buf, want, (off_t)n->stream.offset);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        queued_t *q = queue_event(n->b, JG_BACKEND_LOG, n->group_id, n->job_index, n->rank,
                                  attempt, NULL, NULL, false, 0, 0);
        q->data = jg_xmalloc((size_t)r);
        memcpy(q->data, buf, (size_t)r);
        q->ev.len = (size_t)r;
        n->stream.offset += r;
        total += (size_t)r;
    }
    free(buf);
    return total;
}

static void stream_drain(node_t *n)
{
    size_t got = stream_read(n, STREAM_DRAIN_MAX);
    if (got == STREAM_DRAIN_MAX)
        jg_log("warn", "group %" PRId64 ": node %d-%d ended with more than %d MiB of output "
               "not collected yet; the rest is not kept", n->group_id, n->job_index, n->rank,
               STREAM_DRAIN_MAX >> 20);
}

static void stream_tick(jg_loop_t *loop, void *arg)
{
    (void)loop;
    local_t *b = arg;
    b->stream_timer = 0;
    bool any = false, behind = false;
    for (node_t *n = b->nodes; n; n = n->next) {
        if (n->quiet || n->shim_gone)
            continue;
        any = true;
        if (stream_read(n, STREAM_TICK_MAX) == STREAM_TICK_MAX)
            behind = true;
    }
    flush_events(b);
    if (any)
        stream_arm(b, behind ? 0 : STREAM_TICK_MS);
}

/* ---- STOPPED ---------------------------------------------------------------
 *
 * Each stop() is remembered until every node it targeted has reported its
 * end (or cleanup() silenced it); then one STOPPED is queued for it. */

struct stop_wait {
    stop_wait_t *next;
    int64_t group_id;
    int job_index;
    int rank;
};

static void stop_wait_free(local_t *b, stop_wait_t *w)
{
    for (stop_wait_t **pp = &b->stop_waits; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    free(w);
}

static void stop_waits_check(local_t *b)
{
    for (stop_wait_t *w = b->stop_waits, *next; w; w = next) {
        next = w->next;
        bool live = false;
        for (node_t *n = b->nodes; n && !live; n = n->next)
            live = matches(n, w->group_id, w->job_index, w->rank) && !n->reported_final &&
                   !n->quiet;
        if (live)
            continue;
        queue_event(b, JG_BACKEND_STOPPED, w->group_id, w->job_index, w->rank, 0, NULL, NULL,
                    false, 0, 0);
        stop_wait_free(b, w);
    }
}

static void stop_wait_add(local_t *b, int64_t group_id, int job_index, int rank)
{
    stop_wait_t *w = jg_xcalloc(1, sizeof *w);
    *w = (stop_wait_t){.next = b->stop_waits, .group_id = group_id, .job_index = job_index,
                       .rank = rank};
    b->stop_waits = w;
    stop_waits_check(b);        /* nothing left to stop: STOPPED at once (queued) */
}

/* ---- cleanup, fit, the host as a node ------------------------------------ */

/* Still synchronous (kills and waits briefly, then removes); CLEANED is
 * queued, so it reaches the core from the loop like every other event. */
static int local_cleanup(jg_backend_t *base, int64_t group_id, jg_error_t *err)
{
    local_t *b = base->impl;
    int rc = cleanup_group(b, group_id, err);
    stop_waits_check(b);        /* its nodes went quietly: their stops are over */
    queue_event(b, JG_BACKEND_CLEANED, group_id, -1, -1, 0, rc < 0 ? err->text : NULL, NULL,
                false, 0, 0);
    return 0;
}

/* The host is one node: a job whose node is larger than the host (its
 * max_node) never fits; a group fits now when it fits in what is free. */
static jg_fit_t local_fit(jg_backend_t *base, const jg_group_spec_t *spec, const jg_usage_t *held,
                          char *why, size_t len)
{
    local_t *b = base->impl;
    const jg_capacity_t *cap = &b->capacity;
    for (size_t i = 0; i < spec->n_jobs; i++)
        if (!jg_capacity_node_fits(cap, base->name, &spec->jobs[i], why, len))
            return JG_FIT_NEVER;
    jg_usage_t idle = {0};
    char short_of[256];
    if (!jg_usage_group_fits(&idle, cap, spec, short_of, sizeof short_of)) {
        static const char prefix[] = "waiting for resources: ";
        const char *need = strncmp(short_of, prefix, sizeof prefix - 1) == 0
                               ? short_of + sizeof prefix - 1 : short_of;
        snprintf(why, len, "group %s can never start: even on an idle infra %s it %s",
                 spec->name, base->name, need);
        return JG_FIT_NEVER;
    }
    jg_usage_t none = {0};
    return jg_usage_group_fits(held ? held : &none, cap, spec, why, len) ? JG_FIT_NOW
                                                                          : JG_FIT_NOT_NOW;
}

static void describe_host_node(local_t *b)
{
    jg_capacity_t *cap = &b->capacity;
    cap->reachable = true;
    cap->nodes = jg_xcalloc(1, sizeof *cap->nodes);
    cap->n_nodes = 1;
    cap->nodes[0] = (jg_capacity_node_t){.name = jg_xstrdup("localhost"),
                                         .cpus = cap->max_node_cpus,
                                         .memory_gb = cap->max_node_memory_gb};
    jg_accel_t *accels = cap->n_accels ? jg_xcalloc(cap->n_accels, sizeof *accels) : NULL;
    for (size_t i = 0; i < cap->n_accels; i++)
        accels[i] = (jg_accel_t){.name = jg_xstrdup(cap->accels[i].name),
                                 .count = cap->accels[i].count};
    cap->nodes[0].accels = accels;
    cap->nodes[0].n_accels = cap->n_accels;
}

/* ---- the registry's factory ---------------------------------------------- */

/* The shim: $JGSCHED_SHIM, else in libexec_dir, else next to the daemon,
 * else on $PATH. */
static char *find_shim(const char *libexec_dir)
{
    const char *env = getenv("JGSCHED_SHIM");
    if (env && *env)
        return jg_xstrdup(env);
    char *path = libexec_dir ? jg_xasprintf("%s/jgsched-shim", libexec_dir)
                             : jg_sibling_executable("jgsched-shim");
    if (path && access(path, X_OK) == 0)
        return path;
    free(path);
    return jg_xstrdup("jgsched-shim");
}

/* The capacity: what the config declares, the host's own for everything it
 * leaves out; the largest node defaults to the whole capacity. */
static void capacity_from_config(const jg_config_local_t *lc, jg_capacity_t *cap)
{
    jg_capacity_detect_host(cap);
    const jg_config_shape_t *c = &lc->capacity, *m = &lc->max_node;
    bool declared = c->has_cpus || c->has_memory || c->has_accels;
    if (c->has_cpus)
        cap->cpus = c->cpus;
    if (c->has_memory)
        cap->memory_gb = c->memory_gb;
    if (c->has_accels) {
        jg_capacity_clear(cap);
        jg_capacity_t declared_accels = {.accels = c->accels, .n_accels = c->n_accels};
        jg_capacity_t copy;
        jg_capacity_copy(&copy, &declared_accels);
        cap->accels = copy.accels;
        cap->n_accels = copy.n_accels;
    }
    cap->max_node_cpus = m->has_cpus ? m->cpus : cap->cpus;
    cap->max_node_memory_gb = m->has_memory ? m->memory_gb : cap->memory_gb;
    /* backends.local.oversubscribe: admission hands out more CPUs than there
     * are (memory and accelerators never); nodes then share the cores. */
    if (lc->oversubscribe > 1) {
        cap->cpus *= lc->oversubscribe;
        cap->max_node_cpus *= lc->oversubscribe;
    }
    snprintf(cap->source, sizeof cap->source, "%s", declared ? "config" : "host");
}

jg_backend_t *jg_backend_local_from_env(const jg_backend_env_t *env, jg_error_t *err)
{
    static const jg_config_t defaults_missing = {0};
    const jg_config_local_t *lc = env->config ? &env->config->local
                                              : &defaults_missing.local;
    char *shim = find_shim(env->libexec_dir);
    jg_capacity_t capacity;
    capacity_from_config(lc, &capacity);
    jg_local_config_t local = {.state_dir = env->state_dir, .shim_path = shim,
                               .loop = env->loop, .on_event = env->on_event,
                               .event_ctx = env->event_ctx, .capacity = &capacity,
                               .host_gpus = !lc->capacity.has_accels,
                               .share_host_network = lc->network == JG_CONFIG_NETWORK_HOST,
                               .nat = lc->nat,
                               .nat_network = lc->nat_network,
                               .cgroups_off = lc->cgroups == JG_CONFIG_CGROUPS_OFF};
    jg_backend_t *b = jg_backend_local_create(&local, err);
    jg_capacity_clear(&capacity);
    free(shim);
    return b;
}
