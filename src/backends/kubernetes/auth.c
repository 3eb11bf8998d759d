/* auth.c - kubeconfig credentials as curl settings; exec plugins off the loop.
 *
 * Precedence follows client-go: an exec plugin's credential replaces the
 * static ones; a tokenFile's last successfully read content replaces an
 * inline token (client-go re-reads the file periodically; here a stat() per
 * request notices a change - inode, size or mtime - and re-reads it, which
 * catches a projected service-account token's rotation at once).
 *
 * An exec plugin is started with posix_spawnp (nothing of the daemon runs in
 * the child), stdout and stderr are non-blocking pipes and its exit is a
 * pidfd, all three watched by the loop; a timer kills a plugin that hangs.
 * Its output is bounded.  The credential is kept until its
 * expirationTimestamp (none: until a 401 says otherwise), as client-go does.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

extern char **environ;

#define MAX_TOKEN_FILE_BYTES (64u << 10)
#define MAX_EXEC_OUTPUT (1u << 20)

typedef struct {
    char *data;
    size_t len;
} bytes_t;

struct jg_k8s_auth {
    jg_loop_t *loop;
    jg_k8s_auth_ready_f on_ready;
    void *ctx;
    char *server;           /* what URLs are built on (host replaced by tls_server_name) */
    char *connect_to;       /* "name:port:host:port" when tls_server_name is set */
    struct curl_slist *connect_list;
    bytes_t ca_pem, cert_pem, key_pem;
    char *ca_file, *cert_file, *key_file, *token, *token_file;
    bool insecure;
    unsigned gen;           /* bumped whenever the credentials change */

    /* token file */
    char *file_token;
    dev_t tf_dev;
    ino_t tf_ino;
    off_t tf_size;
    struct timespec tf_mtime;
    bool tf_seen;

    /* exec plugin */
    char **exec_argv;
    char **exec_env;        /* only the additions, "NAME=value" */
    size_t n_exec_env;
    char *exec_api_version;
    char *exec_info;        /* "KUBERNETES_EXEC_INFO=<ExecCredential JSON>" */
    int exec_timeout_ms;
    bool exec_valid;
    char *exec_token;
    bytes_t exec_cert, exec_key;
    int64_t exec_expiry_us; /* 0: no expiry given */
    pid_t pid;
    int pidfd, out_fd, err_fd;
    bytes_t out, errout;
    uint64_t kill_timer, ready_timer;
    bool ready_ok;
    jg_error_t ready_err;
};

static bytes_t bytes_dup(const char *p, size_t n)
{
    bytes_t b = {0};
    if (p && n) {
        b.data = jg_xmalloc(n + 1);
        memcpy(b.data, p, n);
        b.data[n] = '\0';
        b.len = n;
    }
    return b;
}

static void bytes_free(bytes_t *b)
{
    free(b->data);
    *b = (bytes_t){0};
}

static void bytes_append(bytes_t *b, const char *p, size_t n)
{
    b->data = jg_xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* A token goes into a header: no line breaks or other control characters. */
static bool token_clean(const char *t)
{
    for (; *t; t++)
        if ((unsigned char)*t < 0x20 || *t == 0x7f)
            return false;
    return true;
}

static int base_url(jg_k8s_auth_t *a, const char *server, const char *tls_server_name,
                    jg_error_t *err)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *url = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, server, 0) != CURLUE_OK) {
        jg_errprintf(err, "cluster server '%s' is not a URL", server);
        goto done;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        jg_errprintf(err, "cluster server '%s' has no host", server);
        goto done;
    }
    if (tls_server_name && tls_server_name[0]) {
        /* curl verifies the certificate against the URL's host: put the
         * expected name there and connect to the real address. */
        if (curl_url_set(u, CURLUPART_HOST, tls_server_name, 0) != CURLUE_OK) {
            jg_errprintf(err, "tls-server-name '%s' is not a host name", tls_server_name);
            goto done;
        }
        a->connect_to = jg_xasprintf("%s:%s:%s:%s", tls_server_name, port, host, port);
        a->connect_list = curl_slist_append(NULL, a->connect_to);
    }
    if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
        jg_errprintf(err, "cluster server '%s' is not a URL", server);
        goto done;
    }
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        n--;
    a->server = jg_xstrndup(url, n);
    rc = 0;
done:
    curl_free(host);
    curl_free(port);
    curl_free(url);
    curl_url_cleanup(u);
    return rc;
}

static char *base64(const char *data, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = jg_xmalloc((n + 2) / 3 * 4 + 1), *o = out;
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* What the plugin learns of its caller: never interactive (the daemon has no
 * terminal to ask on), and with provideClusterInfo the cluster, as client-go
 * describes it (the CA as data, read from certificate-authority if need be). */
static int exec_info(jg_k8s_auth_t *a, const jg_k8s_cluster_config_t *cfg, jg_error_t *err)
{
    json_t *spec = json_pack("{sb}", "interactive", 0);
    if (cfg->exec.provide_cluster_info) {
        json_t *cluster = json_pack("{ss}", "server", cfg->server);
        if (cfg->tls_server_name)
            json_object_set_new(cluster, "tls-server-name", json_string(cfg->tls_server_name));
        if (cfg->insecure_skip_tls_verify)
            json_object_set_new(cluster, "insecure-skip-tls-verify", json_true());
        char *pem = NULL;
        size_t pem_len = 0;
        if (cfg->ca_pem) {
            pem = jg_xstrndup(cfg->ca_pem, cfg->ca_pem_len);
            pem_len = cfg->ca_pem_len;
        } else if (cfg->ca_file) {
            FILE *f = fopen(cfg->ca_file, "re");
            if (!f) {
                json_decref(cluster);
                json_decref(spec);
                return jg_errprintf(err, "certificate-authority %s: %s", cfg->ca_file,
                                    strerror(errno));
            }
            pem = jg_xmalloc(1 << 20);
            pem_len = fread(pem, 1, 1 << 20, f);
            fclose(f);
        }
        if (pem) {
            char *b64 = base64(pem, pem_len);
            json_object_set_new(cluster, "certificate-authority-data", json_string(b64));
            free(b64);
            free(pem);
        }
        json_object_set_new(spec, "cluster", cluster);
    }
    json_t *info = json_pack("{sssssO}", "apiVersion", a->exec_api_version, "kind",
                             "ExecCredential", "spec", spec);
    char *text = json_dumps(info, JSON_COMPACT);
    a->exec_info = jg_xasprintf("KUBERNETES_EXEC_INFO=%s", text);
    free(text);
    json_decref(info);
    json_decref(spec);
    return 0;
}

jg_k8s_auth_t *jg_k8s_auth_create(jg_loop_t *loop, const jg_k8s_cluster_config_t *cfg,
                                  jg_k8s_auth_ready_f on_ready, void *ctx, jg_error_t *err)
{
    if (!cfg->server || !cfg->server[0]) {
        jg_errprintf(err, "the cluster has no server");
        return NULL;
    }
    bool has_cert = cfg->cert_file || cfg->cert_pem;
    bool has_key = cfg->key_file || cfg->key_pem;
    if (has_cert != has_key) {
        jg_errprintf(err, "the user has a client %s but no %s", has_cert ? "certificate" : "key",
                     has_cert ? "client-key" : "client-certificate");
        return NULL;
    }
    const char *api = cfg->exec.api_version;
    if (cfg->exec.command && (!api || (strcmp(api, "client.authentication.k8s.io/v1") != 0 &&
                                       strcmp(api, "client.authentication.k8s.io/v1beta1") != 0))) {
        jg_errprintf(err, "exec plugin '%s': apiVersion '%s' is not supported "
                     "(client.authentication.k8s.io/v1 or /v1beta1)", cfg->exec.command,
                     api ? api : "");
        return NULL;
    }
    if (cfg->token && !token_clean(cfg->token)) {
        jg_errprintf(err, "the user's token contains control characters");
        return NULL;
    }
    jg_k8s_auth_t *a = jg_xcalloc(1, sizeof *a);
    a->loop = loop;
    a->on_ready = on_ready;
    a->ctx = ctx;
    a->pid = -1;
    a->pidfd = a->out_fd = a->err_fd = -1;
    a->gen = 1;
    if (base_url(a, cfg->server, cfg->tls_server_name, err) < 0) {
        jg_k8s_auth_destroy(a);
        return NULL;
    }
    a->ca_pem = bytes_dup(cfg->ca_pem, cfg->ca_pem_len);
    a->cert_pem = bytes_dup(cfg->cert_pem, cfg->cert_pem_len);
    a->key_pem = bytes_dup(cfg->key_pem, cfg->key_pem_len);
    a->ca_file = jg_xstrdup(cfg->ca_file);
    a->cert_file = jg_xstrdup(cfg->cert_file);
    a->key_file = jg_xstrdup(cfg->key_file);
    a->token = jg_xstrdup(cfg->token);
    a->token_file = jg_xstrdup(cfg->token_file);
    a->insecure = cfg->insecure_skip_tls_verify;
    if (cfg->exec.command) {
        a->exec_argv = jg_xcalloc(cfg->exec.n_args + 2, sizeof *a->exec_argv);
        a->exec_argv[0] = jg_xstrdup(cfg->exec.command);
        for (size_t i = 0; i < cfg->exec.n_args; i++)
            a->exec_argv[i + 1] = jg_xstrdup(cfg->exec.args[i]);
        a->exec_env = jg_xcalloc(cfg->exec.n_env + 1, sizeof *a->exec_env);
        for (size_t i = 0; i < cfg->exec.n_env; i++)
            a->exec_env[i] = jg_xasprintf("%s=%s", cfg->exec.env[i].name, cfg->exec.env[i].value);
        a->n_exec_env = cfg->exec.n_env;
        a->exec_api_version = jg_xstrdup(api);
        a->exec_timeout_ms = cfg->exec.timeout_ms > 0 ? cfg->exec.timeout_ms : 60000;
        if (exec_info(a, cfg, err) < 0) {
            jg_k8s_auth_destroy(a);
            return NULL;
        }
    }
    return a;
}

static void exec_reset_child(jg_k8s_auth_t *a)
{
    if (a->out_fd >= 0) {
        jg_loop_del_fd(a->loop, a->out_fd);
        close(a->out_fd);
        a->out_fd = -1;
    }
    if (a->err_fd >= 0) {
        jg_loop_del_fd(a->loop, a->err_fd);
        close(a->err_fd);
        a->err_fd = -1;
    }
    if (a->pidfd >= 0) {
        jg_loop_del_fd(a->loop, a->pidfd);
        close(a->pidfd);
        a->pidfd = -1;
    }
    if (a->kill_timer) {
        jg_loop_cancel_timer(a->loop, a->kill_timer);
        a->kill_timer = 0;
    }
    bytes_free(&a->out);
    bytes_free(&a->errout);
}

void jg_k8s_auth_destroy(jg_k8s_auth_t *a)
{
    if (!a)
        return;
    if (a->pid > 0) {
        kill(a->pid, SIGKILL);
        waitpid(a->pid, NULL, 0);   /* killed: returns at once */
    }
    exec_reset_child(a);
    if (a->ready_timer)
        jg_loop_cancel_timer(a->loop, a->ready_timer);
    free(a->server);
    free(a->connect_to);
    curl_slist_free_all(a->connect_list);
    bytes_free(&a->ca_pem);
    bytes_free(&a->cert_pem);
    bytes_free(&a->key_pem);
    free(a->ca_file);
    free(a->cert_file);
    free(a->key_file);
    free(a->token);
    free(a->token_file);
    free(a->file_token);
    for (size_t i = 0; a->exec_argv && a->exec_argv[i]; i++)
        free(a->exec_argv[i]);
    free(a->exec_argv);
    for (size_t i = 0; i < a->n_exec_env; i++)
        free(a->exec_env[i]);
    free(a->exec_env);
    free(a->exec_api_version);
    free(a->exec_info);
    free(a->exec_token);
    bytes_free(&a->exec_cert);
    bytes_free(&a->exec_key);
    free(a);
}

const char *jg_k8s_auth_server(const jg_k8s_auth_t *a)
{
    return a->server;
}

bool jg_k8s_auth_usable(jg_k8s_auth_t *a)
{
    if (!a->exec_argv)
        return true;
    return a->exec_valid && (!a->exec_expiry_us || jg_now_wall_us() < a->exec_expiry_us);
}

/* ---- token file ---- */

/* Re-reads the token file if it is not the one last read.  Keeps the last
 * good token when the file is briefly missing or empty (a rotation in
 * progress); fails only when no token was ever read. */
static int token_file_check(jg_k8s_auth_t *a, jg_error_t *err)
{
    struct stat st;
    if (stat(a->token_file, &st) == 0 && a->tf_seen && st.st_dev == a->tf_dev &&
        st.st_ino == a->tf_ino && st.st_size == a->tf_size &&
        st.st_mtim.tv_sec == a->tf_mtime.tv_sec && st.st_mtim.tv_nsec == a->tf_mtime.tv_nsec)
        return 0;
    int fd = open(a->token_file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    char *text = NULL;
    const char *why = NULL;
    if (fd < 0) {
        why = strerror(errno);
    } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        why = "not a regular file";
    } else if (st.st_size > (off_t)MAX_TOKEN_FILE_BYTES) {
        why = "larger than 64 KiB";
    } else {
        text = jg_xmalloc((size_t)st.st_size + 1);
        ssize_t n = read(fd, text, (size_t)st.st_size);
        if (n < 0) {
            why = strerror(errno);
        } else {
            text[n] = '\0';
            while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
                text[--n] = '\0';
            if (!n)
                why = "empty";
            else if (!token_clean(text))
                why = "contains control characters";
        }
    }
    if (fd >= 0)
        close(fd);
    if (why) {
        free(text);
        if (a->file_token || a->token)
            return 0;       /* keep what worked (or the inline token) */
        return jg_errprintf(err, "tokenFile %s: %s", a->token_file, why);
    }
    a->tf_seen = true;
    a->tf_dev = st.st_dev;
    a->tf_ino = st.st_ino;
    a->tf_size = st.st_size;
    a->tf_mtime = st.st_mtim;
    if (!a->file_token || strcmp(a->file_token, text) != 0)
        a->gen++;
    free(a->file_token);
    a->file_token = text;
    return 0;
}

/* ---- exec plugin ---- */

/* RFC 3339 as Go's time.Time marshals it: 2026-12-02T23:00:00Z,
 * with optional fractional seconds and a numeric offset. */
static int parse_rfc3339(const char *s, int64_t *us)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t frac_us = 0, scale = 100000;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac_us += (*p - '0') * scale;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int h = atoi(p + 1), m = atoi(p + 4);
        offset_s = (h * 3600 + m * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    time_t t = timegm(&tm);
    *us = ((int64_t)t - offset_s) * 1000000 + frac_us;
    return 0;
}

static void report_ready(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_k8s_auth_t *a = arg;
    a->ready_timer = 0;
    a->on_ready(a->ctx, a->ready_ok, a->ready_ok ? NULL : &a->ready_err);
}

/* Reports from the loop, never from inside the caller's call. */
static void report_later(jg_k8s_auth_t *a, bool ok)
{
    a->ready_ok = ok;
    if (!a->ready_timer)
        a->ready_timer = jg_loop_add_timer(a->loop, 0, report_ready, a);
}

static int exec_parse(jg_k8s_auth_t *a, jg_error_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(a->out.data ? a->out.data : "", a->out.len, 0, &jerr);
    const char *cmd = a->exec_argv[0];
    if (!root)
        return jg_errprintf(err, "exec plugin %s: its output is not JSON: %s", cmd, jerr.text);
    int rc = -1;
    const char *api = NULL, *kind = NULL, *token = NULL, *cert = NULL, *key = NULL, *exp = NULL;
    if (json_unpack_ex(root, &jerr, 0, "{s?s, s?s, s?{s?s, s?s, s?s, s?s}}", "apiVersion", &api,
                       "kind", &kind, "status", "token", &token, "clientCertificateData", &cert,
                       "clientKeyData", &key, "expirationTimestamp", &exp) < 0) {
        jg_errprintf(err, "exec plugin %s: bad ExecCredential: %s", cmd, jerr.text);
        goto done;
    }
    if (!kind || strcmp(kind, "ExecCredential") != 0) {
        jg_errprintf(err, "exec plugin %s: printed kind '%s', not ExecCredential", cmd,
                     kind ? kind : "");
        goto done;
    }
    if (!api || strcmp(api, a->exec_api_version) != 0) {
        jg_errprintf(err, "exec plugin %s: printed apiVersion '%s', the kubeconfig asks for '%s'",
                     cmd, api ? api : "", a->exec_api_version);
        goto done;
    }
    if (!token && !(cert && key)) {
        jg_errprintf(err, "exec plugin %s: the ExecCredential has neither status.token nor "
                     "status.clientCertificateData and clientKeyData", cmd);
        goto done;
    }
    if (token && !token_clean(token)) {
        jg_errprintf(err, "exec plugin %s: status.token contains control characters", cmd);
        goto done;
    }
    int64_t expiry = 0;
    if (exp && parse_rfc3339(exp, &expiry) < 0) {
        jg_errprintf(err, "exec plugin %s: status.expirationTimestamp '%s' is not RFC 3339",
                     cmd, exp);
        goto done;
    }
    free(a->exec_token);
    a->exec_token = jg_xstrdup(token);
    bytes_free(&a->exec_cert);
    bytes_free(&a->exec_key);
    if (cert && key) {
        a->exec_cert = bytes_dup(cert, strlen(cert));
        a->exec_key = bytes_dup(key, strlen(key));
    }
    a->exec_expiry_us = expiry;
    a->exec_valid = true;
    a->gen++;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

static void drain(int fd, bytes_t *b)
{
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n <= 0)
            return;
        if (b->len + (size_t)n <= MAX_EXEC_OUTPUT)
            bytes_append(b, chunk, (size_t)n);
    }
}

static void on_exec_pipe(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)revents;
    jg_k8s_auth_t *a = arg;
    bytes_t *b = fd == a->out_fd ? &a->out : &a->errout;
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n > 0) {
        if (b->len + (size_t)n <= MAX_EXEC_OUTPUT)
            bytes_append(b, chunk, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    jg_loop_del_fd(loop, fd);   /* EOF: the pidfd says when it is over */
    close(fd);
    if (fd == a->out_fd)
        a->out_fd = -1;
    else
        a->err_fd = -1;
}

static void on_exec_exit(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    jg_k8s_auth_t *a = arg;
    int status = 0;
    if (waitpid(a->pid, &status, WNOHANG) == 0)
        return;
    a->pid = -1;
    if (a->out_fd >= 0)
        drain(a->out_fd, &a->out);
    if (a->err_fd >= 0)
        drain(a->err_fd, &a->errout);
    const char *cmd = a->exec_argv[0];
    bool ok = false;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        ok = exec_parse(a, &a->ready_err) == 0;
    } else {
        char tail[200] = "";
        if (a->errout.len) {
            size_t from = a->errout.len > 190 ? a->errout.len - 190 : 0;
            jg_log_escape(tail, sizeof tail, a->errout.data + from, a->errout.len - from);
        }
        if (WIFSIGNALED(status))
            jg_errprintf(&a->ready_err, "exec plugin %s: killed by signal %d%s%s", cmd,
                         WTERMSIG(status), tail[0] ? ": " : "", tail);
        else
            jg_errprintf(&a->ready_err, "exec plugin %s: exited with %d%s%s", cmd,
                         WEXITSTATUS(status), tail[0] ? ": " : "", tail);
    }
    exec_reset_child(a);
    report_later(a, ok);
}

static void on_exec_timeout(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_k8s_auth_t *a = arg;
    a->kill_timer = 0;
    if (a->pid > 0)
        kill(a->pid, SIGKILL);      /* the pidfd then reports it */
}

static int exec_spawn(jg_k8s_auth_t *a, jg_error_t *err)
{
    const char *cmd = a->exec_argv[0];
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    char **envp = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int rc = -1;
    if (pipe2(out, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(errp, O_CLOEXEC | O_NONBLOCK) < 0) {
        jg_errprintf(err, "exec plugin %s: pipe: %s", cmd, strerror(errno));
        goto done;
    }
    /* the child's ends must block: a plugin need not cope with EAGAIN */
    fcntl(out[1], F_SETFL, 0);
    fcntl(errp[1], F_SETFL, 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    size_t n_environ = 0;
    while (environ[n_environ])
        n_environ++;
    envp = jg_xcalloc(n_environ + a->n_exec_env + 2, sizeof *envp);
    size_t k = 0;
    for (size_t i = 0; i < n_environ; i++)
        if (strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) != 0)
            envp[k++] = environ[i];
    for (size_t i = 0; i < a->n_exec_env; i++)
        envp[k++] = a->exec_env[i];
    envp[k++] = a->exec_info;
    envp[k] = NULL;
    pid_t pid;
    int e = posix_spawnp(&pid, cmd, &fa, NULL, a->exec_argv, envp);
    if (e != 0) {
        jg_errprintf(err, "exec plugin %s: cannot start it: %s", cmd, strerror(e));
        goto done;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        jg_errprintf(err, "exec plugin %s: pidfd_open: %s", cmd, strerror(errno));
        goto done;
    }
    a->pid = pid;
    a->pidfd = pidfd;
    a->out_fd = out[0];
    a->err_fd = errp[0];
    out[0] = errp[0] = -1;
    if (jg_loop_add_fd(a->loop, a->out_fd, EPOLLIN, on_exec_pipe, a, err) < 0 ||
        jg_loop_add_fd(a->loop, a->err_fd, EPOLLIN, on_exec_pipe, a, err) < 0 ||
        jg_loop_add_fd(a->loop, a->pidfd, EPOLLIN, on_exec_exit, a, err) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        a->pid = -1;
        exec_reset_child(a);
        goto done;
    }
    a->kill_timer = jg_loop_add_timer(a->loop, a->exec_timeout_ms, on_exec_timeout, a);
    rc = 0;
done:
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    free(envp);
    return rc;
}

void jg_k8s_auth_refresh(jg_k8s_auth_t *a)
{
    if (!a->exec_argv) {
        bool ok = !a->token_file || token_file_check(a, &a->ready_err) == 0;
        report_later(a, ok);
        return;
    }
    if (a->pid > 0 || a->ready_timer)
        return;             /* under way: its report serves every waiter */
    if (exec_spawn(a, &a->ready_err) < 0)
        report_later(a, false);
}

bool jg_k8s_auth_invalidate(jg_k8s_auth_t *a, unsigned gen)
{
    if (!a->exec_argv)
        return false;
    if (gen == a->gen)
        a->exec_valid = false;
    return true;
}

int jg_k8s_auth_apply(jg_k8s_auth_t *a, CURL *e, struct curl_slist **headers, unsigned *gen,
                      jg_error_t *err)
{
    if (a->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (a->ca_pem.len) {
        struct curl_blob blob = {.data = a->ca_pem.data, .len = a->ca_pem.len,
                                 .flags = CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    } else if (a->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, a->ca_file);
    }
    if (a->connect_list)
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, a->connect_list);
    const bytes_t *cert = a->exec_cert.len ? &a->exec_cert : &a->cert_pem;
    const bytes_t *key = a->exec_key.len ? &a->exec_key : &a->key_pem;
    if (cert->len) {
        struct curl_blob blob = {.data = cert->data, .len = cert->len, .flags = CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (a->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, a->cert_file);
    }
    if (key->len) {
        struct curl_blob blob = {.data = key->data, .len = key->len, .flags = CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (a->key_file) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, a->key_file);
    }
    if (a->token_file && token_file_check(a, err) < 0)
        return -1;
    const char *token = a->exec_argv ? a->exec_token
                        : a->file_token ? a->file_token : a->token;
    if (token && token[0]) {
        char *h = jg_xasprintf("Authorization: Bearer %s", token);
        *headers = curl_slist_append(*headers, h);
        free(h);
    }
    *gen = a->gen;
    return 0;
}

/* ---- in-cluster ---- */

static char *read_small_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return NULL;
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return jg_xstrdup(buf);
}

int jg_k8s_incluster_config(const char *sa_dir, jg_k8s_incluster_t *s,
                            jg_k8s_cluster_config_t *cfg, jg_error_t *err)
{
    *s = (jg_k8s_incluster_t){0};
    if (!sa_dir)
        sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !host[0] || !port || !port[0])
        return jg_errprintf(err, "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST and "
                            "KUBERNETES_SERVICE_PORT are not set");
    char *token_file = jg_xasprintf("%s/token", sa_dir);
    if (access(token_file, R_OK) != 0) {
        jg_errprintf(err, "in-cluster configuration: cannot read %s: %s", token_file,
                     strerror(errno));
        free(token_file);
        return -1;
    }
    bool v6 = strchr(host, ':') != NULL;
    s->server = jg_xasprintf("https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
    s->token_file = token_file;
    s->ca_file = jg_xasprintf("%s/ca.crt", sa_dir);
    char *ns_path = jg_xasprintf("%s/namespace", sa_dir);
    s->namespace_ = read_small_file(ns_path);
    free(ns_path);
    *cfg = (jg_k8s_cluster_config_t){.server = s->server, .token_file = s->token_file,
                                     .ca_file = access(s->ca_file, R_OK) == 0 ? s->ca_file : NULL};
    return 0;
}

void jg_k8s_incluster_free(jg_k8s_incluster_t *s)
{
    free(s->server);
    free(s->ca_file);
    free(s->token_file);
    free(s->namespace_);
    *s = (jg_k8s_incluster_t){0};
}
