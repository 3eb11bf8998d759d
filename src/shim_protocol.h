/* shim_protocol.h - the files shared by the local backend and jgsched-shim.
 *
 * The backend prepares one node directory per node, <state_dir>/groups/<group
 * id>/<job>-<rank>/, and starts `jgsched-shim <nodedir> <attempt>` in a new
 * session.  The two never talk over a socket: the files below are the whole
 * protocol, so a daemon that restarts finds everything again on disk.
 *
 *   env        the node's environment, NUL-separated KEY=VALUE (backend writes)
 *   setup.sh   the job's setup, run as `/bin/bash setup.sh` (only if the job has one)
 *   run.sh     the job's run (only if the job has one)
 *   workdir    an absolute path whose contents the shim copies into work/
 *              before setup (only if the job has a workdir)
 *   work/      the node's working directory (cwd of setup and run)
 *   output.log stdout+stderr of setup and run; O_APPEND, so attempts follow each other
 *   attempts   "<attempt> <offset>" lines: where each attempt starts in output.log
 *              (backend writes at launch; read back only to mark attempts in
 *              `jgsched logs`, so a bad line is skipped, never trusted further)
 *   release    a FIFO, the barrier: the backend writes 'R' (run) or 'C' (cancel)
 *   status     append-only, one line per step, written only by the shim
 *   tmp/       the node's /tmp (its own mount namespace), kept across attempts
 *   gpus       "<attempt> <index>,<index>...": the GPUs the backend gave that
 *              attempt (only for a node that got some), for the user to read
 *
 * The node directory and everything in it belong to the node's user: the shim
 * runs as that user from its first instruction (the backend's child switched
 * before exec).  So the backend treats these files as the user's words: what
 * status says decides at most what is reported for that node (its steps and
 * exit code), never which process is signalled or which GPU is taken; it opens
 * them without following links or blocking, and only as regular files.
 * and, in the group directory <state_dir>/groups/<group id>/ (netns.h):
 *
 *   net        "keeper <pid> <starttime>": the process holding the group's network
 *   hosts      the nodes' /etc/hosts
 *   (mountpoints: written by older versions, removed by cleanup; mount
 *              points made on the host are now the user's and stay)
 *   .shims     "<attempt> <pid> <starttime> <gpus or -> <job>-<rank>", one line
 *              per shim the backend started: the daemon's own record (the group
 *              directory is the daemon's, 0711), from which cleanup kills and
 *              reattach takes GPUs back
 *
 * `jgsched-shim <nodedir> <attempt> net` says the node has a network namespace
 * of its own: when the node ends the shim also kills every process left in
 * it.  `jgsched-shim --hold <group dir>` is a group's network keeper.
 *
 * Status lines: every line starts with the attempt it belongs to, so a line
 * written late by the dying shim of attempt N is never read as one of N+1
 * (both append to the same file):
 *
 *   <attempt> started <shim pid> <starttime>   for people: the backend uses .shims
 *   <attempt> setup_done                        setup passed (or there was none)
 *   <attempt> running                           released: run has started
 *   <attempt> exit <setup|run> <code> <signal>  code 128+signal when signaled
 *   <attempt> cancelled                         stopped at the barrier, before run
 *
 * A status without `exit` or `cancelled` for the attempt whose shim is gone
 * means the node was killed from outside (NODE_LOST).
 */
#ifndef JGSCHED_SHIM_PROTOCOL_H
#define JGSCHED_SHIM_PROTOCOL_H

#define JG_SHIM_ENV "env"
#define JG_SHIM_SETUP "setup.sh"
#define JG_SHIM_RUN "run.sh"
#define JG_SHIM_WORKDIR "workdir"
#define JG_SHIM_WORK "work"
#define JG_SHIM_LOG "output.log"
#define JG_SHIM_RELEASE "release"
#define JG_SHIM_STATUS "status"
#define JG_SHIM_GPUS "gpus"
#define JG_SHIM_ATTEMPTS "attempts"

#define JG_SHIM_RELEASE_RUN 'R'
#define JG_SHIM_RELEASE_CANCEL 'C'

/* The exit code recorded when the shim itself cannot do its job (a missing
 * file, a failed fork); the reason is written to output.log. */
#define JG_SHIM_INTERNAL_ERROR 255

#endif
