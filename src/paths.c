/* paths.c - resolves where an instance lives (see include/jgsched/paths.h).
 * The layout is shared by the daemon (which creates it) and the CLI (which
 * only needs the socket, and starts a daemon when none answers there).  It
 * describes the instance the environment names, whatever else runs on the
 * machine: whether a plain user's CLI talks to the system daemon instead is
 * the CLI's choice (src/cli/client.c). */
#include "jgsched/paths.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int jg_paths_resolve(jg_paths_t *p, jg_error_t *err)
{
    memset(p, 0, sizeof *p);
    const char *home = env_nonempty("JGSCHED_HOME");
    if (home) {
        if (home[0] != '/') {
            char cwd[PATH_MAX];
            if (!getcwd(cwd, sizeof cwd))
                return jg_errprintf(err, "JGSCHED_HOME=%s is relative and the current "
                                         "directory is unreadable", home);
            p->home = jg_xasprintf("%s/%s", cwd, home);
        } else {
            p->home = jg_xstrdup(home);
        }
        p->run_dir = jg_xstrdup(p->home);
    } else if (geteuid() == 0) {
        p->system = 1;
        p->home = jg_xstrdup("/var/lib/jgsched");
        p->run_dir = jg_xstrdup("/run/jgsched");
    } else {
        const char *state = env_nonempty("XDG_STATE_HOME");
        if (state) {
            p->home = jg_xasprintf("%s/jgsched", state);
        } else {
            const char *uhome = env_nonempty("HOME");
            if (!uhome) {
                struct passwd *pw = getpwuid(getuid());
                uhome = pw ? pw->pw_dir : NULL;
            }
            if (!uhome)
                return jg_errprintf(err, "cannot find a home directory: set JGSCHED_HOME");
            p->home = jg_xasprintf("%s/.local/state/jgsched", uhome);
        }
        const char *rt = env_nonempty("XDG_RUNTIME_DIR");
        p->run_dir = rt ? jg_xasprintf("%s/jgsched", rt)
                        : jg_xasprintf("/tmp/jgsched-%u", (unsigned)getuid());
    }
    const char *sock = env_nonempty("JGSCHED_SOCKET");
    p->socket = sock ? jg_xstrdup(sock) : jg_xasprintf("%s/jgsched.sock", p->run_dir);
    p->store = jg_xasprintf("%s/jgsched.db", p->home);
    p->state_dir = jg_xasprintf("%s/state", p->home);
    p->daemon_log = jg_xasprintf("%s/jgschedd.log", p->home);
    p->pid_file = jg_xasprintf("%s/jgschedd.pid", p->home);
    p->config = p->system ? jg_xstrdup("/etc/jgsched/config.yaml")
                          : jg_xasprintf("%s/config.yaml", p->home);
    return 0;
}

int jg_mkdir_p(const char *path, unsigned mode, jg_error_t *err)
{
    char *buf = jg_xstrdup(path);
    for (char *s = buf + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(buf, mode) < 0 && errno != EEXIST) {
                int e = errno;
                jg_errprintf(err, "cannot create directory %s: %s", buf, strerror(e));
                free(buf);
                return -1;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    free(buf);
    return 0;
}

int jg_paths_create_dirs(const jg_paths_t *p, jg_error_t *err)
{
    /* A root daemon runs nodes as their users, whose shims must reach their own
     * node directories below home and state_dir: traversable, not listable. */
    unsigned dir_mode = geteuid() == 0 ? 0711 : 0700;
    /* Every user must reach the system socket.  The mode is set, not only
     * given to mkdir: root's CLI creates run_dir (0700, for its autostart
     * lock) before it starts the system daemon.  A run_dir that is home
     * keeps home's mode, which lets the socket be reached already. */
    bool open_run_dir = p->system && strcmp(p->run_dir, p->home) != 0;
    if (jg_mkdir_p(p->home, dir_mode, err) < 0 ||
        jg_mkdir_p(p->run_dir, open_run_dir ? 0755 : 0700, err) < 0 ||
        jg_mkdir_p(p->state_dir, dir_mode, err) < 0)
        return -1;
    const char *failed = NULL;
    if (geteuid() == 0 && chmod(p->home, dir_mode) < 0)
        failed = p->home;
    else if (geteuid() == 0 && chmod(p->state_dir, dir_mode) < 0)
        failed = p->state_dir;
    else if (open_run_dir && chmod(p->run_dir, 0755) < 0)
        failed = p->run_dir;
    if (failed)
        return jg_errprintf(err, "cannot set the mode of %s: %s", failed, strerror(errno));
    return 0;
}

void jg_paths_free(jg_paths_t *p)
{
    if (!p)
        return;
    free(p->home);
    free(p->run_dir);
    free(p->socket);
    free(p->store);
    free(p->state_dir);
    free(p->daemon_log);
    free(p->pid_file);
    free(p->config);
    memset(p, 0, sizeof *p);
}

char *jg_sibling_executable(const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return jg_xasprintf("%s/%s", self, name);
}
