/* objects.h - the Kubernetes objects of one group, as jansson values
 * (private to the Kubernetes backend; docs/kubernetes.md explains the design).
 *
 * Per group: an owner ConfigMap `jg-<gid>` (the setup/run scripts of every job
 * and the hosts table), a Secret `jg-<gid>-token` (the agent's token), a
 * headless Service `jg-<gid>` (the pods' subdomain), and one Pod per node.
 * Everything but the ConfigMap has an ownerReference to it, so deleting the
 * ConfigMap garbage-collects the group.  The builders only build: no I/O, no
 * API calls; every result is a new reference the caller owns (json_decref).
 * They fail (NULL + err) only on input no valid object can come from.
 */
#ifndef JGSCHED_K8S_OBJECTS_H
#define JGSCHED_K8S_OBJECTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jgsched/error.h"
#include "jgsched/spec.h"

#define JG_K8S_AGENT_PORT 7411
#define JG_K8S_DNS_LABEL_MAX 63

/* What the backend's configuration decides; borrowed by every builder. */
typedef struct {
    const char *namespace;
    const char *instance;       /* the daemon's instance id: label jgsched.io/instance */
    const char *agent_image;    /* "jgsched/agent:<version>" */
    const char *default_image;  /* a job without image_id runs this */
    const char *gpu_resource;   /* NULL: "nvidia.com/gpu" */
    const char *gpu_label;      /* node label naming the accelerator type (e.g.
                                 * "skypilot.co/accelerator"); NULL: no nodeSelector */
    int stop_grace_ms;          /* the agent's grace; the pod's termination grace follows */
    bool hosts_writable;        /* the install container runs as uid 0 and makes the
                                 * pod's /etc/hosts writable for a non-root image */
} jg_k8s_settings_t;

/* The owner ConfigMap as the API server returned it (its uid is only known
 * then): what every other object's ownerReference names. */
typedef struct {
    const char *name;
    const char *uid;
} jg_k8s_owner_t;

/* Names.  Every one is a DNS-1123 label (lowercase, [a-z0-9-], <= 63),
 * written into out[JG_K8S_DNS_LABEL_MAX + 1].  A name that would be longer
 * keeps its first characters and ends in '-' and 8 hex digits of a hash of
 * the whole name, so two long names stay distinct. */
void jg_k8s_group_name(int64_t group_id, char *out);            /* "jg-<gid>" */
void jg_k8s_secret_name(int64_t group_id, char *out);           /* "jg-<gid>-token" */
void jg_k8s_pod_name(int64_t group_id, const char *job, int rank, char *out);
                                                                /* "jg-<gid>-<job>-<rank>" */
void jg_k8s_hostname(const char *job, int rank, char *out);     /* "<job>-<rank>" */

/* The image a job's `image_id` names: "docker:<image>" (SkyPilot's form) gives
 * <image>; NULL or "" gives settings->default_image.  Any other form is an
 * error naming the value.  Returns a borrowed pointer (into image_id or
 * settings), NULL + err on failure. */
const char *jg_k8s_image(const jg_k8s_settings_t *settings, const char *image_id,
                         jg_error_t *err);

/* The owner ConfigMap: labels, data "<job>.setup" / "<job>.run" for every job
 * that has them, "hosts" (hosts_text, may be NULL: "") and "group" (the
 * group's name). */
json_t *jg_k8s_owner_configmap(const jg_k8s_settings_t *settings, const jg_group_spec_t *spec,
                               int64_t group_id, const char *hosts_text);

/* The Secret holding the agent's token (key "token", base64 as the API wants). */
json_t *jg_k8s_token_secret(const jg_k8s_settings_t *settings, int64_t group_id,
                            const jg_k8s_owner_t *owner, const char *token);

/* The headless Service that gives the pods their DNS names
 * (<hostname>.jg-<gid>.<namespace>.svc...) and lets them be proxied to. */
json_t *jg_k8s_service(const jg_k8s_settings_t *settings, int64_t group_id,
                       const jg_k8s_owner_t *owner);

/* One node's Pod.  image: as jg_k8s_image returned it.  The environment is
 * jg_node_env's (DESIGN section 4) without PATH and SHELL unless the job's
 * envs set them (the image's own PATH must stay: a conda image has its
 * python there), with SKYPILOT_NODE_IPS empty (the agent learns the IPs
 * through POST /env once every pod has one), plus the agent's settings.
 * Each of the job's named volumes `MOUNT: NAME` is the PersistentVolumeClaim
 * NAME (pre-created by the admin; ReadWriteMany to share it across nodes) as
 * pod volume jg-vol-<i>, mounted at MOUNT.  NULL + err when the job's
 * resources cannot be written as quantities or jg_k8s_check_volumes fails. */
json_t *jg_k8s_pod(const jg_k8s_settings_t *settings, const jg_group_spec_t *spec,
                   int64_t group_id, int job_index, int rank, int attempt, int64_t submitted_us,
                   const jg_k8s_owner_t *owner, const char *image, jg_error_t *err);

/* -1 + err when a job's volume mount path cannot be a pod's: /, /tmp,
 * /.jgsched or below it (jgsched's own mounts), or a path with ':'. */
int jg_k8s_check_volumes(const jg_job_spec_t *job, jg_error_t *err);

/* A quantity as Kubernetes writes it: cpus 2 -> "2", 0.5 -> "500m"; memory
 * (GiB, as jgsched's spec and SkyPilot's docs mean it) 4 -> "4Gi", 1.5 ->
 * "1536Mi".  Into out[32]; -1 + err for a value that is negative, not finite
 * or absurdly large. */
int jg_k8s_cpu_quantity(double cpus, char *out, jg_error_t *err);
int jg_k8s_memory_quantity(double gib, char *out, jg_error_t *err);

#endif
