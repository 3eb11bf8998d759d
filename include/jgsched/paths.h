/* paths.h - where one jgsched instance keeps its socket, store, logs and config.
 *
 * JGSCHED_HOME, when set, holds a whole instance:  <home>/jgsched.sock,
 * <home>/jgsched.db, <home>/state/ (node directories and logs),
 * <home>/jgschedd.log, <home>/jgschedd.pid, <home>/config.yaml.
 * Otherwise a per-user instance: the socket under $XDG_RUNTIME_DIR/jgsched (or
 * /tmp/jgsched-<uid>), everything else under $XDG_STATE_HOME/jgsched (or
 * ~/.local/state/jgsched).  JGSCHED_SOCKET overrides only the socket path; for
 * the CLI it names a running daemon, and the CLI never starts one for it.
 *
 * System mode (the shared scheduler of a machine, DESIGN section 7): root
 * without JGSCHED_HOME gets /run/jgsched/jgsched.sock, the store and node
 * directories under /var/lib/jgsched and /etc/jgsched/config.yaml.  A plain
 * user's CLI without JGSCHED_HOME or JGSCHED_SOCKET talks to that system daemon
 * when its socket exists, else to a per-user daemon (jg_cli_connect decides;
 * the resolver always describes the per-user instance, which such a user may
 * still run).
 */
#ifndef JGSCHED_PATHS_H
#define JGSCHED_PATHS_H

#include "jgsched/error.h"

typedef struct {
    char *home;         /* the state directory of the instance */
    char *run_dir;      /* directory holding the socket */
    char *socket;
    char *store;
    char *state_dir;    /* node directories: <state_dir>/groups/<id>/<job>-<rank>/ */
    char *daemon_log;
    char *pid_file;
    char *config;
    int system;         /* the machine-wide instance (root's, or jgschedd --system) */
} jg_paths_t;

#define JG_SYSTEM_SOCKET "/run/jgsched/jgsched.sock"

/* Fills every field (malloc'd strings); creates nothing. */
int jg_paths_resolve(jg_paths_t *paths, jg_error_t *err);

/* Creates home, run_dir and state_dir if missing: 0700, or 0711 for root
 * (users' shims reach their node directories); a system instance's separate
 * run_dir is made 0755 even when it exists, so every user reaches the socket. */
int jg_paths_create_dirs(const jg_paths_t *paths, jg_error_t *err);

void jg_paths_free(jg_paths_t *paths);

/* mkdir -p with the given mode for each created component. */
int jg_mkdir_p(const char *path, unsigned mode, jg_error_t *err);

/* A sibling executable of the running program (e.g. "jgsched-shim" next to
 * jgschedd), or NULL if /proc/self/exe cannot be read.  Caller frees. */
char *jg_sibling_executable(const char *name);

#endif
