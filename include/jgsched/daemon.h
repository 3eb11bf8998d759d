/* daemon.h - jgschedd: the socket server in front of the scheduler.
 *
 * Owns, in this order of creation (and reverse order of destruction): the
 * event loop, the store, the scheduler with its backends, the listening
 * socket and the client connections.  Requests are served on the one loop
 * thread with non-blocking I/O, so no client can block another or the
 * scheduler.  Identity comes only from SO_PEERCRED.
 */
#ifndef JGSCHED_DAEMON_H
#define JGSCHED_DAEMON_H

#include "jgsched/error.h"
#include "jgsched/paths.h"

typedef struct jg_daemon jg_daemon_t;

/* Opens the store, creates the backends, recovers active groups and binds the
 * socket at paths->socket (refusing if another daemon answers there).  Paths
 * are copied.  NULL + err on failure, with nothing left behind. */
jg_daemon_t *jg_daemon_create(const jg_paths_t *paths, jg_error_t *err);

/* Serves until a shutdown request or SIGTERM/SIGINT; returns 0, or -1 + err. */
int jg_daemon_run(jg_daemon_t *d, jg_error_t *err);

/* Closes connections and the socket, frees everything; running nodes are left
 * running for the next daemon to pick up.  Accepts NULL. */
void jg_daemon_destroy(jg_daemon_t *d);

#endif
