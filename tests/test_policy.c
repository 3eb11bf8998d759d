/* test_policy.c - the policy engine: loading, every hook, the sandbox's
 * resistance to escapes and abuse (in the spirit of Redis's scripting.tcl),
 * strict return validation with fallback to the default decision, and the
 * decisions of the shipped policies.  Specs are built by hand so the module
 * is tested on its own; policies come from the source tree's policies/ and
 * tests/fixtures/policy/. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "jgsched/policy.h"

#ifndef JG_TEST_FIXTURES
#define JG_TEST_FIXTURES "tests/fixtures"
#endif
#define POLICY_DIR JG_TEST_FIXTURES "/../../policies"
#define FIX JG_TEST_FIXTURES "/policy/"

/* ---- a group to decide about: trainer (primary, 2 nodes, H100, recovery on
 * exit 29 and 3 restarts on errors) and server (auxiliary, 1 node) ---------- */

static int codes29[] = { 29 };
static jg_kv_t envs[] = { { "MODE", "fast" } };
static char *primaries[] = { "trainer" };
static jg_job_spec_t jobs[2];
static jg_group_spec_t spec;
static jg_policy_job_state_t states[2];
static jg_policy_group_t group;

static char logbuf[8192];

static void capture_log(void *ctx, const char *policy, const char *line)
{
    (void)ctx;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "[%s] %s\n", policy, line);
}

static void setup(void)
{
    memset(jobs, 0, sizeof jobs);
    jobs[0] = (jg_job_spec_t){
        .name = "trainer", .line = 8, .num_nodes = 2,
        .cpus = { true, 4, true }, .memory_gb = { true, 8, true },
        .accel = { "H100", 1 },
        .recovery = { .set = true, .max_restarts_on_errors = 3,
                      .recover_on_exit_codes = codes29, .n_recover_on_exit_codes = 1 },
        .envs = envs, .n_envs = 1, .run = "python train.py",
    };
    jobs[1] = (jg_job_spec_t){ .name = "server", .line = 20, .num_nodes = 1,
                               .cpus = { true, 2, false }, .run = "serve" };
    spec = (jg_group_spec_t){ .name = "rl", .source = "rl.yaml", .jobs = jobs, .n_jobs = 2,
                              .primary_tasks = primaries, .n_primary_tasks = 1,
                              .termination_delay_s = 30 };
    for (int i = 0; i < 2; i++)
        states[i] = (jg_policy_job_state_t){ .state = JG_RUNNING, .attempt = 1,
                                             .exit_code = -1, .infra = "local" };
    group = (jg_policy_group_t){ .spec = &spec, .id = 7, .user = "alice", .state = JG_RUNNING,
                                 .submitted_us = 1700000000123456, .jobs = states };
    logbuf[0] = '\0';
    jg_policy_set_log(capture_log, NULL);
}

static void teardown(void)
{
    jg_policy_set_log(NULL, NULL);
}

TestSuite(policy, .init = setup, .fini = teardown);

static jg_policy_limits_t fast = { .memory_bytes = 8u << 20, .instructions = 2000000,
                                   .time_ms = 2000 };

static jg_policy_t *load(const char *name)
{
    jg_error_t err = { "" };
    jg_policy_t *p = jg_policy_load(name, POLICY_DIR, &fast, &err);
    cr_assert_not_null(p, "loading %s: %s", name, err.text);
    return p;
}

static jg_policy_t *load_src(const char *src)
{
    jg_error_t err = { "" };
    jg_policy_t *p = jg_policy_load_text("t", src, strlen(src), POLICY_DIR, &fast, &err);
    cr_assert_not_null(p, "loading text: %s\n%s", err.text, src);
    return p;
}

static jg_policy_decision_t node_exit(jg_policy_t *p, size_t job, jg_policy_exit_reason_t reason,
                                      int code, int expect_rc, jg_error_t *err)
{
    jg_policy_exit_t ev = { .reason = reason, .exit_code = code, .rank = 1 };
    jg_policy_decision_t d;
    memset(&d, 0xAB, sizeof d);
    int rc = jg_policy_on_node_exit(p, &group, job, &ev, &d, err);
    cr_assert_eq(rc, expect_rc, "on_node_exit rc %d (err: %s)", rc, err->text);
    return d;
}

/* Runs a policy whose on_submit body is `body`; expects it to fail with an
 * error containing `needle`, and the default decision (accept) in out. */
static void expect_submit_error(const char *body, const char *needle)
{
    char src[4096];
    snprintf(src, sizeof src, "return { on_submit = function(group, user)\n%s\nend }\n", body);
    jg_policy_t *p = load_src(src);
    jg_policy_user_t u = { "alice", 1000, false };
    jg_policy_admission_t a;
    jg_error_t err = { "" };
    int rc = jg_policy_on_submit(p, &group, &u, &a, &err);
    cr_assert_eq(rc, -1, "expected an error from:\n%s", body);
    cr_assert(strstr(err.text, needle), "error '%s' lacks '%s'", err.text, needle);
    cr_assert(a.accepted, "the default decision (accept) must be used");
    jg_policy_free(p);
}

/* Runs on_submit and expects success and acceptance: for probes that return
 * true when the sandbox holds, or nil + what leaked. */
static void expect_submit_ok(const char *body)
{
    char src[4096];
    snprintf(src, sizeof src, "return { on_submit = function(group, user)\n%s\nend }\n", body);
    jg_policy_t *p = load_src(src);
    jg_policy_admission_t a;
    jg_error_t err = { "" };
    int rc = jg_policy_on_submit(p, &group, NULL, &a, &err);
    cr_assert_eq(rc, 0, "error: %s", err.text);
    cr_assert(a.accepted, "probe rejected: %s", a.reason);
    jg_policy_free(p);
}

/* ---- loading ----------------------------------------------------------------- */

Test(policy, default_defines_every_hook_and_is_found_by_name)
{
    jg_policy_t *p = load("default");
    cr_assert_str_eq(jg_policy_name(p), "default");
    cr_assert(strstr(jg_policy_path(p), "policies/default.lua"));
    cr_assert_eq(jg_policy_hooks(p), (1u << JG_HOOK_COUNT) - 1);
    cr_assert_str_eq(jg_policy_hook_name(JG_HOOK_ON_NODE_EXIT), "on_node_exit");
    jg_policy_free(p);
}

Test(policy, shipped_policies_define_only_what_they_change)
{
    struct { const char *name; unsigned hooks; } cases[] = {
        { "fail-fast", 1u << JG_HOOK_ON_NODE_EXIT },
        { "fair-share", 1u << JG_HOOK_PRIORITY },
        { "gpu-on-kubernetes", 1u << JG_HOOK_PLACE },
    };
    for (size_t i = 0; i < 3; i++) {
        jg_policy_t *p = load(cases[i].name);
        cr_assert_eq(jg_policy_hooks(p), cases[i].hooks, "%s", cases[i].name);
        jg_policy_free(p);
    }
}

Test(policy, unknown_name_lists_the_available_policies)
{
    jg_error_t err = { "" };
    cr_assert_null(jg_policy_load("nosuch", POLICY_DIR, NULL, &err));
    cr_assert(strstr(err.text, "no policy named 'nosuch'"), "%s", err.text);
    cr_assert(strstr(err.text, "fail-fast"), "%s", err.text);
}

Test(policy, name_with_odd_characters_is_refused)
{
    jg_error_t err = { "" };
    cr_assert_null(jg_policy_load("fail fast", POLICY_DIR, NULL, &err));
    cr_assert(strstr(err.text, "not a policy name"), "%s", err.text);
}

Test(policy, syntax_error_names_file_and_line)
{
    jg_error_t err = { "" };
    cr_assert_null(jg_policy_load(FIX "syntax.lua", POLICY_DIR, NULL, &err));
    cr_assert(strstr(err.text, "cannot load policy syntax"), "%s", err.text);
    cr_assert(strstr(err.text, "syntax.lua:3:"), "%s", err.text);
}

Test(policy, error_while_loading_names_file_and_line)
{
    jg_error_t err = { "" };
    cr_assert_null(jg_policy_load(FIX "load-error.lua", POLICY_DIR, NULL, &err));
    cr_assert(strstr(err.text, "load-error.lua:3:"), "%s", err.text);
    cr_assert(strstr(err.text, "limits"), "%s", err.text);
}

Test(policy, chunk_must_return_a_table_of_known_function_hooks)
{
    jg_error_t err = { "" };
    cr_assert_null(jg_policy_load(FIX "not-table.lua", POLICY_DIR, NULL, &err));
    cr_assert(strstr(err.text, "must return a table of hooks"), "%s", err.text);
    cr_assert_null(jg_policy_load(FIX "typo-hook.lua", POLICY_DIR, NULL, &err));
    cr_assert(strstr(err.text, "unknown hook 'on_node_exti' (did you mean 'on_node_exit'?)"),
              "%s", err.text);
    cr_assert_null(jg_policy_load(FIX "not-function.lua", POLICY_DIR, NULL, &err));
    cr_assert(strstr(err.text, "hook 'priority' is a number value, not a function"), "%s",
              err.text);
}

Test(policy, endless_chunk_is_stopped_at_load)
{
    jg_error_t err = { "" };
    cr_assert_null(jg_policy_load(FIX "loops-at-load.lua", POLICY_DIR, &fast, &err));
    cr_assert(strstr(err.text, "loops-at-load.lua:2: policy ran past its budget"), "%s",
              err.text);
}

Test(policy, bytecode_is_refused)
{
    jg_error_t err = { "" };
    cr_assert_null(jg_policy_load(FIX "bytecode.lua", POLICY_DIR, NULL, &err));
    cr_assert(strstr(err.text, "attempt to load a binary chunk"), "%s", err.text);
}

/* The prelude is built in: a policy directory holding default.lua alone is
 * whole, and one without it names the file it lacks. */
Test(policy, a_policy_dir_needs_only_default_lua)
{
    jg_error_t err = { "" };
    cr_assert_null(jg_policy_load("default", "/nonexistent/policies", NULL, &err));
    cr_assert(strstr(err.text, "/nonexistent/policies/default.lua"), "%s", err.text);
    char dir[] = "/var/tmp/jg-policy-dir-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/default.lua", POLICY_DIR);
    snprintf(dst, sizeof dst, "%s/default.lua", dir);
    FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
    cr_assert(in && out);
    int ch;
    while ((ch = fgetc(in)) != EOF)
        fputc(ch, out);
    fclose(in);
    fclose(out);
    jg_policy_t *p = jg_policy_load("default", dir, NULL, &err);
    unlink(dst);
    rmdir(dir);
    cr_assert_not_null(p, "%s", err.text);
    jg_policy_free(p);
}

/* Run as root, only policies root alone may change are loaded by name: an
 * installed policy a user can edit would put the user's Lua into the root
 * daemon (issue 11: a checkout a developer built). */
Test(policy, root_loads_by_name_only_policies_root_alone_may_change)
{
    if (geteuid() != 0)
        cr_skip_test("needs root");
    char dir[] = "/var/tmp/jg-policy-owner-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chmod(dir, 0755), 0);
    char def[512], mine[512], src[512];
    snprintf(def, sizeof def, "%s/default.lua", dir);
    snprintf(mine, sizeof mine, "%s/mine.lua", dir);
    snprintf(src, sizeof src, "%s/default.lua", POLICY_DIR);
    FILE *in = fopen(src, "r"), *out = fopen(def, "w"), *m = fopen(mine, "w");
    cr_assert(in && out && m);
    int ch;
    while ((ch = fgetc(in)) != EOF)
        fputc(ch, out);
    fclose(in);
    fclose(out);
    fputs("return {}\n", m);
    fclose(m);
    cr_assert_eq(chmod(def, 0644), 0);
    cr_assert_eq(chmod(mine, 0644), 0);
    jg_error_t err = { "" };
    jg_policy_t *p = jg_policy_load("mine", dir, NULL, &err);
    cr_assert_not_null(p, "%s", err.text);
    jg_policy_free(p);

    cr_assert_eq(chmod(mine, 0664), 0);
    cr_expect_null(jg_policy_load("mine", dir, NULL, &err));
    cr_expect(strstr(err.text, "refusing to run") && strstr(err.text, "mine.lua") &&
              strstr(err.text, "0664"), "%s", err.text);
    cr_assert_eq(chmod(mine, 0644), 0);
    cr_assert_eq(chown(def, 65534, 0), 0);
    cr_expect_null(jg_policy_load("mine", dir, NULL, &err), "a default.lua of another user ran");
    cr_expect(strstr(err.text, "default.lua as root: it is not root's alone"), "%s", err.text);
    cr_assert_eq(chown(def, 0, 0), 0);
    cr_assert_eq(chmod(dir, 0777), 0);
    cr_expect_null(jg_policy_load("mine", dir, NULL, &err));
    cr_expect(strstr(err.text, "its directory"), "%s", err.text);
    unlink(def);
    unlink(mine);
    rmdir(dir);
}

Test(policy, failed_reload_leaves_the_old_policy_working)
{
    jg_policy_t *old = load("fail-fast");
    jg_error_t err = { "" };
    jg_policy_t *new = jg_policy_load(FIX "syntax.lua", POLICY_DIR, NULL, &err);
    cr_assert_null(new);
    jg_policy_decision_t d = node_exit(old, 1, JG_EXIT_EXITED, 1, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_FAIL_GROUP);
    jg_policy_free(old);
}

Test(policy, print_goes_to_the_log_callback_and_state_persists)
{
    jg_policy_t *p = load(FIX "counting.lua");
    double key;
    jg_error_t err = { "" };
    cr_assert_eq(jg_policy_priority(p, &group, NULL, 0, &key, &err), 0, "%s", err.text);
    cr_assert_eq(jg_policy_priority(p, &group, NULL, 0, &key, &err), 0, "%s", err.text);
    cr_assert_eq(key, 2);
    cr_assert(strstr(logbuf, "[counting] priority of\trl\tcall\t1\n"), "%s", logbuf);
    cr_assert(strstr(logbuf, "call\t2"), "%s", logbuf);
    jg_policy_free(p);
}

/* ---- the sandbox --------------------------------------------------------------- */

/* A policy must not be able to write what reads as a line of the daemon's own
 * log (issue 10: "...\n...Z info group 1 deleted by root"), nor drive the
 * terminal of whoever reads it, nor flood it from a loop. */
Test(policy, print_escapes_control_characters_and_is_bounded_per_call)
{
    jg_policy_t *p = load_src("return { on_submit = function()\n"
                              "  print('x\\n2026-12-02T16:00:00.000Z info group 1 deleted by root')\n"
                              "  print('\\27[2J\\r\\0end')\n"
                              "  for i = 1, 1000 do print('flood', i) end\n"
                              "  return true end }");
    jg_policy_admission_t a;
    jg_error_t err = { "" };
    cr_assert_eq(jg_policy_on_submit(p, &group, NULL, &a, &err), 0, "%s", err.text);
    cr_assert(strstr(logbuf, "[t] x\\n2026-12-02T16:00:00.000Z info group 1 deleted by root\n"),
              "%s", logbuf);
    cr_assert(strstr(logbuf, "[t] \\x1b[2J\\r\\x00end\n"), "%s", logbuf);
    cr_assert_null(strstr(logbuf, "\n2026"), "a forged line: %s", logbuf);
    cr_assert_null(strchr(logbuf, 27), "a raw ESC reached the log");
    cr_assert(strstr(logbuf, "flood\t30\n"), "%s", logbuf);
    cr_assert_null(strstr(logbuf, "flood\t31\n"), "print is bounded per call");
    cr_assert(strstr(logbuf, "(more print output of this call suppressed)"), "%s", logbuf);
    /* The bound is per call: the next call prints again. */
    logbuf[0] = '\0';
    cr_assert_eq(jg_policy_on_submit(p, &group, NULL, &a, &err), 0, "%s", err.text);
    cr_assert(strstr(logbuf, "flood\t1\n"), "%s", logbuf);
    jg_policy_free(p);
}

Test(policy, io_is_absent)
{
    expect_submit_error("local f = io.open('/etc/passwd') return true", "global 'io'");
}

Test(policy, os_has_only_time_clock_date)
{
    expect_submit_error("os.execute('touch /tmp/pwned') return true", "field 'execute'");
    expect_submit_error("os.exit(1) return true", "field 'exit'");
    expect_submit_error("return os.getenv('HOME') ~= nil", "field 'getenv'");
    expect_submit_ok("assert(type(os.time()) == 'number' and type(os.clock()) == 'number')\n"
                     "assert(type(os.date('%Y')) == 'string')\n"
                     "local n = 0 for _ in pairs(os) do n = n + 1 end\n"
                     "if n ~= 3 then return nil, 'os has ' .. n .. ' fields' end return true");
}

Test(policy, require_package_debug_dofile_loadfile_are_absent)
{
    expect_submit_error("require('os') return true", "global 'require'");
    expect_submit_error("dofile('/etc/passwd') return true", "global 'dofile'");
    expect_submit_error("loadfile('/etc/passwd') return true", "global 'loadfile'");
    expect_submit_ok("for _, k in ipairs({'package', 'debug', 'io', 'coroutine', 'collectgarbage',\n"
                     "  'warn', 'load', 'loadstring', 'require', 'dofile', 'loadfile'}) do\n"
                     "  if _G[k] ~= nil or _ENV[k] ~= nil then return nil, k .. ' leaked' end\n"
                     "end return true");
}

Test(policy, no_way_to_load_bytecode)
{
    expect_submit_error("local f = load('\\27Lua') return true", "global 'load'");
    expect_submit_error("local b = string.dump(function() end) return true", "field 'dump'");
    expect_submit_error("local b = ('').dump(print) return true", "field 'dump'");
}

Test(policy, string_metatable_is_out_of_reach)
{
    expect_submit_ok("if getmetatable('') ~= false then return nil, 'string metatable visible' end\n"
                     "return true");
    expect_submit_error("local s = getmetatable('').__index return true",
                        "attempt to index a boolean value");
    expect_submit_error("setmetatable('', {}) return true", "bad argument");
}

Test(policy, tampering_with_its_own_env_cannot_break_default)
{
    /* The policy vandalises every library table and helper it can see, then
     * leaves on_node_exit to default.lua, which must still decide correctly. */
    jg_policy_t *p = load_src(
        "string.format = nil; table.concat = nil; jg.contains = nil; jg.failed = nil\n"
        "for k in pairs(math) do math[k] = nil end\n"
        "_G.tostring = nil; ipairs = nil\n"
        "jg.default.on_node_exit = function() return 'fail_group' end\n"
        "return { on_submit = function() return jg.default.on_submit() end }\n");
    jg_error_t err = { "" };
    jg_policy_decision_t d = node_exit(p, 0, JG_EXIT_EXITED, 29, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_RESTART_JOB);
    cr_assert(strstr(d.reason, "recover_on_exit_codes"), "%s", d.reason);
    jg_policy_free(p);
}

Test(policy, globals_are_per_script_env)
{
    expect_submit_ok("if _G ~= _ENV then return nil, '_G is not _ENV' end\n"
                     "if rawget(_G, 'io') ~= nil then return nil, 'io' end\n"
                     "if type(jg) ~= 'table' or type(jg.default.place) ~= 'function' then\n"
                     "  return nil, 'jg missing' end\n"
                     "_ENV = setmetatable({}, {__index = function() return nil end})\n"
                     "return true");
}

Test(policy, finalizers_are_refused)
{
    expect_submit_error("setmetatable({}, {__gc = function() while true do end end}) return true",
                        "__gc metamethods are not allowed");
}

Test(policy, snapshot_changes_never_reach_c_or_the_next_call)
{
    jg_policy_t *p = load_src(
        "local kept\n"
        "return { on_node_exit = function(group, job, event)\n"
        "  if kept == nil then\n"
        "    kept = group\n"
        "    job.job_recovery = nil; group.name = 'hacked'; event.exit_code = 0\n"
        "    setmetatable(group, {__index = function() error('boom') end})\n"
        "    return 'continue'\n"
        "  end\n"
        "  assert(kept ~= group and group.name == 'rl' and getmetatable(group) == nil)\n"
        "  return {action = 'continue', reason = group.name .. ' ' .. job.job_recovery.max_restarts_on_errors}\n"
        "end }\n");
    jg_error_t err = { "" };
    node_exit(p, 0, JG_EXIT_EXITED, 29, 0, &err);
    jg_policy_decision_t d = node_exit(p, 0, JG_EXIT_EXITED, 29, 0, &err);
    cr_assert_str_eq(d.reason, "rl 3");
    cr_assert_str_eq(spec.name, "rl");
    cr_assert_eq(jobs[0].recovery.max_restarts_on_errors, 3);
    jg_policy_free(p);
}

Test(policy, returns_are_read_raw_so_metamethods_never_run)
{
    /* If the reader honoured __index it would loop forever or restart. */
    jg_policy_t *p = load_src(
        "return { on_node_exit = function()\n"
        "  return setmetatable({}, {__index = function() while true do end end})\n"
        "end }\n");
    jg_error_t err = { "" };
    jg_policy_decision_t d = node_exit(p, 0, JG_EXIT_EXITED, 29, -1, &err);
    cr_assert(strstr(err.text, "needs action"), "%s", err.text);
    cr_assert_eq(d.action, JG_ACTION_RESTART_JOB, "default's decision is used");
    jg_policy_free(p);
}

/* ---- budgets ---------------------------------------------------------------------- */

Test(policy, endless_loop_is_stopped)
{
    expect_submit_error("while true do end", "t.lua:2: policy ran past its budget of 2000000 "
                                             "instructions");
}

/* Whichever budget trips first (under a sanitizer the clock may beat the
 * instruction count), the script's own pcall cannot swallow it. */
Test(policy, pcall_cannot_swallow_the_kill)
{
    expect_submit_error("while true do pcall(function() while true do end end) end",
                        "policy ran past its");
    expect_submit_error("for i = 1, 1e12 do pcall(error, 'x') end return true",
                        "policy ran past its");
    expect_submit_error("while true do xpcall(function() while true do end end,\n"
                        "  function(e) while true do end end) end",
                        "policy ran past its");
}

Test(policy, xpcall_still_works_for_honest_code)
{
    expect_submit_ok("local ok, v = xpcall(function(a, b) return a + b end, print, 2, 3)\n"
                     "assert(ok == true and v == 5)\n"
                     "local ok2, h = xpcall(error, function(e) return 'handled ' .. e end, 'oops', 0)\n"
                     "assert(ok2 == false and h == 'handled oops', tostring(h))\n"
                     "local ok3, h3 = xpcall(error, function(e) error('again', 0) end, 'x')\n"
                     "assert(ok3 == false and h3 == 'again')\n"
                     "return true");
}

Test(policy, wall_clock_deadline_stops_a_slow_hook)
{
    jg_policy_limits_t lim = { .instructions = 1000000000000ull, .time_ms = 50 };
    const char *src = "return { priority = function() while true do end end }";
    jg_error_t err = { "" };
    jg_policy_t *p = jg_policy_load_text("slow", src, strlen(src), POLICY_DIR, &lim, &err);
    cr_assert_not_null(p, "%s", err.text);
    double key = -1;
    cr_assert_eq(jg_policy_priority(p, &group, NULL, 0, &key, &err), -1);
    cr_assert(strstr(err.text, "slow.lua:1: policy ran past its time budget of 50 ms"), "%s",
              err.text);
    cr_assert_eq(key, group.submitted_us / 1e6, "FIFO key from default.lua");
    jg_policy_free(p);
}

Test(policy, budget_is_reset_for_the_next_call)
{
    jg_policy_t *p = load_src("return { on_submit = function() while true do end end,\n"
                              "         priority = function() local s = 0\n"
                              "           for i = 1, 100000 do s = s + i end return s end }");
    jg_error_t err = { "" };
    jg_policy_admission_t a;
    double key;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(jg_policy_on_submit(p, &group, NULL, &a, &err), -1);
        cr_assert_eq(jg_policy_priority(p, &group, NULL, 0, &key, &err), 0, "%s", err.text);
        cr_assert_eq(key, 5000050000.0);
    }
    jg_policy_free(p);
}

Test(policy, deep_recursion_fails_cleanly)
{
    const char *bodies[] = {
        "local function f(n) return f(n + 1) + 1 end return f(1)",
        "local function f(n) local ok = pcall(f, n + 1) return n end\n"
        "f(1) while true do end",
        "local function f(s) return f(s .. 'x') .. 'y' end return f('')",
    };
    jg_policy_limits_t limits[] = { fast, { .memory_bytes = 64u << 20 } };
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; i < 3; i++) {
            char src[512];
            snprintf(src, sizeof src, "return { on_submit = function()\n%s\nend }", bodies[i]);
            jg_error_t err = { "" };
            jg_policy_t *p = jg_policy_load_text("t", src, strlen(src), POLICY_DIR, &limits[l],
                                                 &err);
            cr_assert_not_null(p, "%s", err.text);
            jg_policy_admission_t a;
            cr_assert_eq(jg_policy_on_submit(p, &group, NULL, &a, &err), -1);
            /* Any of the sandbox's limits may stop it first: under a sanitizer on a
             * loaded machine the wall-clock budget can beat the instruction count. */
            cr_assert(strstr(err.text, "stack overflow") || strstr(err.text, "not enough memory")
                          || strstr(err.text, "ran past its budget")
                          || strstr(err.text, "ran past its time budget"), "%s", err.text);
            cr_assert(a.accepted);
            jg_policy_free(p);
        }
    }
}

/* ---- memory ---------------------------------------------------------------------- */

Test(policy, string_rep_bomb_fails_cleanly_and_the_policy_recovers)
{
    jg_policy_t *p = load_src("return { on_submit = function()\n"
                              "  local s = string.rep('x', 1 << 30) return true end,\n"
                              "  priority = function() return #string.rep('y', 1000) end }");
    jg_error_t err = { "" };
    jg_policy_admission_t a;
    cr_assert_eq(jg_policy_on_submit(p, &group, NULL, &a, &err), -1);
    cr_assert(strstr(err.text, "not enough memory"), "%s", err.text);
    cr_assert(jg_policy_memory(p) < 2 * fast.memory_bytes);
    double key;
    cr_assert_eq(jg_policy_priority(p, &group, NULL, 0, &key, &err), 0, "%s", err.text);
    cr_assert_eq(key, 1000);
    jg_policy_free(p);
}

Test(policy, table_growth_hits_the_memory_cap)
{
    expect_submit_error("local t = {} for i = 1, 1e9 do t[i] = {} end return true",
                        "not enough memory");
}

Test(policy, pcall_around_a_memory_bomb_is_clean)
{
    expect_submit_ok("local ok, e = pcall(string.rep, 'x', 1 << 30)\n"
                     "if ok then return nil, 'allocated 1 GiB' end return true");
}

Test(policy, c_loops_without_instructions_are_bounded)
{
    expect_submit_ok("return #string.rep('', 1 << 62) == 0 and #string.rep('', 1 << 40, '') == 0");
    expect_submit_error("local s = string.rep('a', 100000) return s:find('.-.-.-.-b') ~= nil",
                        "pattern too costly");
    expect_submit_error("local s = string.rep('a', 100000) return s:match('(.*)(.*)(.*)b') ~= nil",
                        "pattern too costly");
    expect_submit_error("local s = string.rep('(', 1000000) return s:find('%b()') ~= nil",
                        "pattern too costly");
    expect_submit_error("local s = string.rep('a', 100000) for w in s:gmatch('(a-)b') do end",
                        "pattern too costly");
    expect_submit_error("table.move({}, 1, math.maxinteger, 2) return true",
                        "destination wrap around");
    expect_submit_error("table.move({}, math.mininteger, math.maxinteger, 2) return true",
                        "too many elements to move");
    /* The bounded replacements behave as Lua's own. */
    expect_submit_ok("local t = {} for i = 1, 10000 do t[i] = i end\n"
                     "table.move(t, 1, 10000, 3)\n"
                     "for i = 3, 10002 do if t[i] ~= i - 2 then return nil, 'up ' .. i end end\n"
                     "table.move(t, 3, 10002, 1)\n"
                     "for i = 1, 10000 do if t[i] ~= i then return nil, 'down ' .. i end end\n"
                     "local u = table.move(t, 1, 10000, 1, {})\n"
                     "if #u ~= 10000 or u[10000] ~= 10000 then return nil, 'copy' end\n"
                     "local parts = {} for i = 1, 5000 do parts[i] = 'ab' end\n"
                     "if string.rep('ab', 5000, ',') ~= table.concat(parts, ',') then\n"
                     "  return nil, 'rep with sep' end\n"
                     "if string.rep('xyz', 3) ~= 'xyzxyzxyz' or string.rep('a', 1) ~= 'a'\n"
                     "   or string.rep('', 3, '-') ~= '--' or string.rep('q', 0) ~= '' then\n"
                     "  return nil, 'rep' end\n"
                     "local v = {1, 2, 3} table.insert(v, 1, 0) table.insert(v, 9)\n"
                     "if table.concat(v, ',') ~= '0,1,2,3,9' then return nil, 'insert' end\n"
                     "if table.remove(v, 1) ~= 0 or table.remove(v) ~= 9 or #v ~= 3 then\n"
                     "  return nil, 'remove' end\n"
                     "local a, b, c = table.unpack(v) if a + b + c ~= 6 then return nil, 'unpack' end\n"
                     "if select('#', table.unpack({}, 1, 3)) ~= 3 then return nil, 'unpack n' end\n"
                     "local w = {5, 3, 9, 1} table.sort(w) if table.concat(w, ' ') ~= '1 3 5 9' then\n"
                     "  return nil, 'sort' end\n"
                     "table.sort(w, function(x, y) return x > y end)\n"
                     "if table.concat(w, ' ') ~= '9 5 3 1' then return nil, 'sort desc' end\n"
                     "if not pcall(os.date, '%Y') or string.format('%5.1f|%q', 2.25, 'a') ~= "
                     "'  2.2|\"a\"' then\n"
                     "  return nil, 'format' end\n"
                     "return true");
    expect_submit_error("return table.concat({1, {}, 3})", "invalid value (at index 2)");
    expect_submit_ok("local name = 'trainer-12'\n"
                     "local a, b = name:match('^(.-)%-(%d+)$')\n"
                     "return a == 'trainer' and b == '12' and ('a,b'):gsub(',', ';') == 'a;b'");
}

Test(policy, allocator_failure_anywhere_is_survived)
{
    /* Inject allocation failure at every point of loading and of a call by
     * sweeping the cap: each attempt either loads (and then decides) or fails
     * with a clean error; nothing crashes, nothing leaks (ASan). */
    jg_error_t err;
    int loaded = 0, failed = 0;
    for (size_t cap = 8 * 1024; cap < 512 * 1024; cap += 6 * 1024) {
        jg_policy_limits_t lim = { .memory_bytes = cap };
        jg_policy_t *p = jg_policy_load("fail-fast", POLICY_DIR, &lim, &err);
        if (!p) {
            cr_assert(strstr(err.text, "memory"), "cap %zu: %s", cap, err.text);
            failed++;
            continue;
        }
        loaded++;
        jg_policy_exit_t ev = { .reason = JG_EXIT_EXITED, .exit_code = 1 };
        jg_policy_decision_t d;
        if (jg_policy_on_node_exit(p, &group, 1, &ev, &d, &err) == 0) {
            cr_assert_eq(d.action, JG_ACTION_FAIL_GROUP);
        } else {
            cr_assert(strstr(err.text, "memory"), "cap %zu: %s", cap, err.text);
            cr_assert_eq(d.action, JG_ACTION_CONTINUE, "default's decision");
        }
        jg_policy_free(p);
    }
    cr_assert(loaded > 0 && failed > 0, "loaded %d, failed %d", loaded, failed);
}

Test(policy, repeated_calls_do_not_grow_the_heap)
{
    jg_policy_t *p = load("fail-fast");
    jg_error_t err;
    for (int i = 0; i < 200; i++)
        node_exit(p, 1, JG_EXIT_EXITED, 1, 0, &err);
    size_t after200 = jg_policy_memory(p);
    for (int i = 0; i < 2000; i++)
        node_exit(p, 1, JG_EXIT_EXITED, 1, 0, &err);
    cr_assert(jg_policy_memory(p) < after200 + 256 * 1024, "%zu -> %zu", after200,
              jg_policy_memory(p));
    jg_policy_free(p);
}

/* ---- errors and strict returns ----------------------------------------------------- */

Test(policy, hook_error_names_file_line_and_uses_default)
{
    jg_policy_t *p = load_src("return {\n"
                              "  on_node_exit = function(group, job, event)\n"
                              "    return job.nope.deeper\n"
                              "  end }");
    jg_error_t err = { "" };
    jg_policy_decision_t d = node_exit(p, 0, JG_EXIT_EXITED, 29, -1, &err);
    cr_assert(strstr(err.text, "on_node_exit: t.lua:3: attempt to index a nil value (field 'nope')"),
              "%s", err.text);
    cr_assert_eq(d.action, JG_ACTION_RESTART_JOB);
    cr_assert_eq(d.count, JG_POLICY_COUNT_NONE);
    cr_assert(strstr(logbuf, "stack traceback"), "traceback logged: %s", logbuf);
    jg_policy_free(p);
}

Test(policy, error_from_a_c_function_gets_the_policy_line)
{
    expect_submit_error("local x = 1\nlocal s = string.rep()\nreturn true",
                        "t.lua:3: bad argument #1 to 'rep'");
    expect_submit_error("error({})", "(error object is a table value)");
    expect_submit_error("error('plain', 0)", "t.lua:2: plain");
}

Test(policy, wrong_return_types_are_errors)
{
    struct { const char *ret; const char *needle; } cases[] = {
        { "42", "must return an action name or a table" },
        { "'restart'", "unknown action 'restart'" },
        { "{acton = 'continue'}", "unknown key 'acton'" },
        { "{action = 'continue', delay = -1}", "between 0 and" },
        { "{action = 'continue', delay = 0/0}", "between 0 and" },
        { "{action = 'continue', delay = '5'}", "number of seconds" },
        { "{action = 'restart_job', count = 'lots'}", "count must be" },
        { "{action = 'continue', reason = {}}", "reason must be a string" },
        { "{[1] = 'continue'}", "number key" },
        { "", "returned nothing" },
        { "'continue', 'extra'", "returned 2 values" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[512];
        snprintf(src, sizeof src, "return { on_node_exit = function() return %s end }",
                 cases[i].ret);
        jg_policy_t *p = load_src(src);
        jg_error_t err = { "" };
        jg_policy_decision_t d = node_exit(p, 1, JG_EXIT_EXITED, 1, -1, &err);
        cr_assert(strstr(err.text, cases[i].needle), "return %s: '%s' lacks '%s'",
                  cases[i].ret, err.text, cases[i].needle);
        cr_assert(strstr(err.text, "t.lua"), "%s", err.text);
        cr_assert_eq(d.action, JG_ACTION_CONTINUE, "default for server exit 1: continue");
        jg_policy_free(p);
    }
}

Test(policy, decision_table_is_read_in_full)
{
    jg_policy_t *p = load_src("return { on_node_exit = function(g, job, ev)\n"
                              "  if ev.reason == 'node_lost' then return {action = 'restart_group'} end\n"
                              "  return {action = 'restart_job', delay = 2.5, reason = 'again', count = 'none'}\n"
                              "end }");
    jg_error_t err = { "" };
    jg_policy_decision_t d = node_exit(p, 1, JG_EXIT_EXITED, 3, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_RESTART_JOB);
    cr_assert_float_eq(d.delay_s, 2.5, 1e-9);
    cr_assert_str_eq(d.reason, "again");
    cr_assert_eq(d.count, JG_POLICY_COUNT_NONE);
    d = node_exit(p, 1, JG_EXIT_NODE_LOST, -1, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_RESTART_GROUP);
    cr_assert_eq(d.count, JG_POLICY_COUNT_RECOVERIES, "count defaults by reason");
    jg_policy_free(p);
}

Test(policy, hooks_see_the_documented_tables)
{
    jg_policy_t *p = load_src(
        "return { on_node_exit = function(g, job, ev)\n"
        "  assert(g.id == 7 and g.name == 'rl' and g.user == 'alice' and g.state == 'RUNNING')\n"
        "  assert(math.abs(g.submitted - 1700000000.123456) < 1e-3)\n"
        "  assert(g.placement == 'SAME_INFRA' and g.execution == 'parallel' and g.policy == nil)\n"
        "  assert(g.source == 'rl.yaml' and g.termination_delay == 30 and g.primary_tasks[1] == 'trainer')\n"
        "  assert(#g.jobs == 2 and g.jobs[1] == job)\n"
        "  assert(job.name == 'trainer' and job.num_nodes == 2 and job.cpus == 4 and job.cpus_at_least)\n"
        "  assert(job.memory == 8 and job.accelerators.H100 == 1 and job.infra == nil)\n"
        "  assert(job.job_recovery.max_restarts_on_errors == 3 and job.job_recovery.recover_on_exit_codes[1] == 29)\n"
        "  assert(job.envs.MODE == 'fast' and job.run == 'python train.py' and job.setup == nil)\n"
        "  assert(job.primary and not g.jobs[2].primary and job.termination_delay == 30)\n"
        "  assert(job.state == 'RUNNING' and job.attempt == 2 and job.restarts == 1 and job.recoveries == 0)\n"
        "  assert(job.exit_code == 29 and job.placed_infra == 'local' and g.jobs[2].job_recovery == nil)\n"
        "  assert(ev.reason == 'exited' and ev.exit_code == 29 and ev.rank == 1 and ev.attempt == 2)\n"
        "  assert(ev.restarts == 1 and ev.recoveries == 0 and ev.message == nil)\n"
        "  assert(math.type(ev.exit_code) == 'integer' and math.type(job.num_nodes) == 'integer')\n"
        "  return 'continue'\n"
        "end }");
    states[0].attempt = 2;
    states[0].restarts = 1;
    states[0].exit_code = 29;
    jg_error_t err = { "" };
    node_exit(p, 0, JG_EXIT_EXITED, 29, 0, &err);
    jg_policy_free(p);
}

Test(policy, bad_calls_get_the_builtin_decision)
{
    jg_policy_t *p = load("default");
    jg_error_t err = { "" };
    jg_policy_decision_t d;
    jg_policy_exit_t ev = { .reason = JG_EXIT_EXITED, .exit_code = 1 };
    cr_assert_eq(jg_policy_on_node_exit(p, &group, 5, &ev, &d, &err), -1);
    cr_assert_eq(d.action, JG_ACTION_CONTINUE);
    group.jobs = NULL;
    cr_assert_eq(jg_policy_on_node_exit(p, &group, 0, &ev, &d, &err), -1);
    cr_assert(strstr(err.text, "without job states"), "%s", err.text);
    jg_policy_free(p);
}

Test(policy, builtin_decision_when_default_fails_too)
{
    /* default itself broken (loaded from text as "default"): the built-in rule. */
    const char *src = "local function boom() error('broken default') end\n"
                      "return { on_submit = boom, place = boom, priority = boom,\n"
                      "  on_node_exit = boom, on_job_end = boom }";
    jg_error_t err = { "" };
    jg_policy_t *p = jg_policy_load_text("default", src, strlen(src), POLICY_DIR, NULL, &err);
    cr_assert_not_null(p, "%s", err.text);
    jg_policy_decision_t d = node_exit(p, 0, JG_EXIT_EXITED, 29, -1, &err);
    cr_assert_eq(d.action, JG_ACTION_CONTINUE);
    cr_assert(strstr(err.text, "default.lua:1: broken default"), "%s", err.text);

    jg_policy_infra_t infras[] = { { "local", true, NULL } };
    jg_policy_placement_t pl;
    cr_assert_eq(jg_policy_place(p, &group, infras, 1, &pl, &err), -1);
    cr_assert(!pl.accepted && pl.job_infra == NULL, "place fails closed");

    states[0].state = JG_SUCCEEDED;
    jg_policy_job_end_t je;
    cr_assert_eq(jg_policy_on_job_end(p, &group, 0, &je, &err), -1);
    cr_assert_eq(je.n_cancel, 1);
    cr_assert_eq(je.cancel[0].job, 1);
    cr_assert_float_eq(je.cancel[0].delay_s, 30, 1e-9);
    jg_policy_job_end_clear(&je);
    jg_policy_free(p);
}

/* ---- on_submit ----------------------------------------------------------------------- */

Test(policy, on_submit_accepts_rejects_and_can_pick_a_policy)
{
    jg_policy_t *p = load_src(
        "return { on_submit = function(g, user)\n"
        "  if user.name == 'mallory' then return nil, 'mallory may not submit' end\n"
        "  if user.admin then return true, 'admin' end\n"
        "  if g.jobs[1].accelerators then g.policy = 'gpu-on-kubernetes' end\n"
        "  return g\n"
        "end }");
    jg_error_t err = { "" };
    jg_policy_admission_t a;
    jg_policy_user_t m = { "mallory", 1001, false }, root = { "root", 0, true },
                     al = { "alice", 1000, false };
    cr_assert_eq(jg_policy_on_submit(p, &group, &m, &a, &err), 0, "%s", err.text);
    cr_assert(!a.accepted);
    cr_assert_str_eq(a.reason, "mallory may not submit");
    cr_assert_eq(jg_policy_on_submit(p, &group, &root, &a, &err), 0, "%s", err.text);
    cr_assert(a.accepted && a.policy[0] == '\0');
    cr_assert_str_eq(a.reason, "admin");
    cr_assert_eq(jg_policy_on_submit(p, &group, &al, &a, &err), 0, "%s", err.text);
    cr_assert(a.accepted);
    cr_assert_str_eq(a.policy, "gpu-on-kubernetes");
    jg_policy_free(p);

    expect_submit_error("return nil", "without a reason");
    expect_submit_error("return 'yes'", "must return true, the group table");
    expect_submit_error("group.policy = '../../etc/x' return group", "not a policy name");
}

Test(policy, default_on_submit_accepts)
{
    jg_policy_t *p = load("default");
    jg_policy_admission_t a;
    jg_error_t err = { "" };
    cr_assert_eq(jg_policy_on_submit(p, &group, NULL, &a, &err), 0, "%s", err.text);
    cr_assert(a.accepted);
    jg_policy_free(p);
}

/* ---- place ----------------------------------------------------------------------------- */

static jg_policy_placement_t place(jg_policy_t *p, const jg_policy_infra_t *infras, size_t n)
{
    jg_policy_placement_t pl;
    jg_error_t err = { "" };
    cr_assert_eq(jg_policy_place(p, &group, infras, n, &pl, &err), 0, "%s", err.text);
    return pl;
}

Test(policy, same_infra_rejects_conflicting_pins)
{
    jg_policy_t *p = load("default");
    jobs[0].infra = "kubernetes";
    jobs[1].infra = "local";
    jg_policy_infra_t infras[] = { { "local", true, NULL }, { "kubernetes", true, NULL } };
    jg_policy_placement_t pl = place(p, infras, 2);
    cr_assert(!pl.accepted);
    cr_assert_str_eq(pl.reason, "job trainer pins kubernetes, job server pins local: placement "
                                "SAME_INFRA needs one infra for all jobs");
    cr_assert_null(pl.job_infra);
    jg_policy_free(p);
}

Test(policy, same_infra_follows_a_pin_for_every_job)
{
    jg_policy_t *p = load("default");
    jobs[1].infra = "kubernetes";
    jg_policy_infra_t infras[] = { { "local", true, NULL }, { "kubernetes/prod", true, NULL } };
    jg_policy_placement_t pl = place(p, infras, 2);
    cr_assert(pl.accepted, "%s", pl.reason);
    cr_assert_eq(pl.job_infra[0], 1);
    cr_assert_eq(pl.job_infra[1], 1);
    jg_policy_placement_clear(&pl);

    jobs[0].infra = "kubernetes/prod";      /* compatible: the more specific wins */
    jg_policy_infra_t two[] = { { "kubernetes/dev", true, NULL }, { "kubernetes/prod", true, NULL } };
    pl = place(p, two, 2);
    cr_assert(pl.accepted, "%s", pl.reason);
    cr_assert_eq(pl.job_infra[0], 1);
    cr_assert_eq(pl.job_infra[1], 1);
    jg_policy_placement_clear(&pl);
    jg_policy_free(p);
}

Test(policy, same_infra_takes_the_first_that_fits_or_says_why_not)
{
    jg_policy_t *p = load("default");
    jg_policy_infra_t infras[] = { { "local", false, "largest node offers 2 cpus" },
                                   { "kubernetes", true, NULL } };
    jg_policy_placement_t pl = place(p, infras, 2);
    cr_assert(pl.accepted);
    cr_assert_eq(pl.job_infra[0], 1);
    cr_assert_eq(pl.job_infra[1], 1);
    jg_policy_placement_clear(&pl);

    infras[1].fits = false;
    pl = place(p, infras, 2);
    cr_assert(!pl.accepted);
    cr_assert(strstr(pl.reason, "local: largest node offers 2 cpus"), "%s", pl.reason);
    cr_assert(strstr(pl.reason, "kubernetes: the group does not fit"), "%s", pl.reason);

    jobs[0].infra = "kubernetes";
    pl = place(p, infras, 1);
    cr_assert(!pl.accepted);
    cr_assert_str_eq(pl.reason, "job trainer pins kubernetes, which is not available here "
                                "(infras: local)");
    jg_policy_free(p);
}

Test(policy, place_returns_are_validated)
{
    jg_policy_infra_t infras[] = { { "local", true, NULL } };
    struct { const char *ret; const char *needle; } cases[] = {
        { "{trainer = 'local'}", "left job 'server' without an infra" },
        { "{trainer = 'local', server = 'aws'}", "'aws', which is not an offered infra (offered: local)" },
        { "{trainer = 'local', server = 'local', ghost = 'local'}", "'ghost', which is not a job" },
        { "{trainer = 'local', server = 1}", "a number; expected an infra name" },
        { "'local'", "must return a table" },
        { "nil", "without a reason" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[512];
        snprintf(src, sizeof src, "return { place = function() return %s end }", cases[i].ret);
        jg_policy_t *p = load_src(src);
        jg_error_t err = { "" };
        jg_policy_placement_t pl;
        cr_assert_eq(jg_policy_place(p, &group, infras, 1, &pl, &err), -1);
        cr_assert(strstr(err.text, cases[i].needle), "%s: %s", cases[i].ret, err.text);
        cr_assert(pl.accepted, "default placement used");
        cr_assert_eq(pl.job_infra[0], 0);
        jg_policy_placement_clear(&pl);
        jg_policy_free(p);
    }
}

Test(policy, gpu_groups_go_to_kubernetes_only)
{
    jg_policy_t *p = load("gpu-on-kubernetes");
    jg_policy_infra_t both[] = { { "local", true, NULL }, { "kubernetes", true, NULL } };
    jg_policy_placement_t pl = place(p, both, 2);
    cr_assert(pl.accepted, "%s", pl.reason);
    cr_assert_eq(pl.job_infra[0], 1);
    cr_assert_eq(pl.job_infra[1], 1);
    jg_policy_placement_clear(&pl);

    pl = place(p, both, 1);
    cr_assert(!pl.accepted);
    cr_assert_str_eq(pl.reason, "job trainer asks for H100:1, which runs on kubernetes only, "
                                "and no kubernetes infra is available");

    jobs[1].infra = "local";
    pl = place(p, both, 2);
    cr_assert(!pl.accepted);
    cr_assert(strstr(pl.reason, "job server pins local"), "%s", pl.reason);

    jobs[1].infra = NULL;
    jobs[0].accel = (jg_accel_t){ NULL, 0 };
    pl = place(p, both, 2);
    cr_assert(pl.accepted);
    cr_assert_eq(pl.job_infra[0], 0, "no accelerators: default placement, local first");
    jg_policy_placement_clear(&pl);
    jg_policy_free(p);
}

/* ---- priority -------------------------------------------------------------------------- */

Test(policy, default_priority_is_fifo)
{
    jg_policy_t *p = load("default");
    double a, b;
    jg_error_t err = { "" };
    cr_assert_eq(jg_policy_priority(p, &group, NULL, 0, &a, &err), 0, "%s", err.text);
    group.submitted_us += 1000000;
    cr_assert_eq(jg_policy_priority(p, &group, NULL, 0, &b, &err), 0, "%s", err.text);
    cr_assert_float_eq(a, 1700000000.123456, 1e-4);
    cr_assert(a < b, "earlier submit sorts first");
    jg_policy_free(p);
}

Test(policy, fair_share_puts_light_users_first)
{
    jg_policy_t *p = load("fair-share");
    jg_policy_usage_t usage[] = { { "alice", 3, 6, 24 }, { "bob", 0, 0, 0 } };
    double alice, bob;
    jg_error_t err = { "" };
    cr_assert_eq(jg_policy_priority(p, &group, usage, 2, &alice, &err), 0, "%s", err.text);
    group.user = "bob";
    group.submitted_us += 3600 * 1000000ll;         /* bob submitted an hour later */
    cr_assert_eq(jg_policy_priority(p, &group, usage, 2, &bob, &err), 0, "%s", err.text);
    cr_assert(bob < alice, "bob %f, alice %f", bob, alice);
    group.user = "carol";                           /* absent from usage: uses nothing */
    double carol;
    cr_assert_eq(jg_policy_priority(p, &group, usage, 2, &carol, &err), 0, "%s", err.text);
    cr_assert(carol < alice);
    jg_policy_free(p);
}

Test(policy, priority_must_be_a_finite_number)
{
    const char *rets[] = { "'1'", "0/0", "math.huge", "nil" };
    for (size_t i = 0; i < 4; i++) {
        char src[256];
        snprintf(src, sizeof src, "return { priority = function() return %s end }", rets[i]);
        jg_policy_t *p = load_src(src);
        double key = -1;
        jg_error_t err = { "" };
        cr_assert_eq(jg_policy_priority(p, &group, NULL, 0, &key, &err), -1, "%s", rets[i]);
        cr_assert(strstr(err.text, "priority"), "%s", err.text);
        cr_assert_float_eq(key, 1700000000.123456, 1e-4);
        jg_policy_free(p);
    }
}

/* ---- on_node_exit: default.lua (SkyPilot's job_recovery) and fail-fast ---------------- */

Test(policy, exit_in_recover_on_exit_codes_restarts_without_charge)
{
    jg_policy_t *p = load("default");
    jg_error_t err = { "" };
    states[0].restarts = 3;                     /* even with max_restarts_on_errors spent */
    jg_policy_decision_t d = node_exit(p, 0, JG_EXIT_EXITED, 29, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_RESTART_JOB);
    cr_assert_eq(d.count, JG_POLICY_COUNT_NONE);
    cr_assert_float_eq(d.delay_s, 0, 1e-9);
    cr_assert(strstr(d.reason, "trainer rank 1: exit 29 is in recover_on_exit_codes"), "%s",
              d.reason);
    states[0].attempt = 100;                    /* the safety stop for endless free restarts */
    d = node_exit(p, 0, JG_EXIT_EXITED, 29, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_CONTINUE);
    cr_assert(strstr(d.reason, "after 100 attempts"), "%s", d.reason);
    jg_policy_free(p);
}

Test(policy, errors_restart_until_max_restarts_on_errors)
{
    jg_policy_t *p = load("default");
    jg_error_t err = { "" };
    for (int r = 0; r < 3; r++) {
        states[0].restarts = r;
        jg_policy_decision_t d = node_exit(p, 0, JG_EXIT_EXITED, 1, 0, &err);
        cr_assert_eq(d.action, JG_ACTION_RESTART_JOB, "restart %d", r);
        cr_assert_eq(d.count, JG_POLICY_COUNT_RESTARTS);
    }
    states[0].restarts = 3;
    jg_policy_decision_t d = node_exit(p, 0, JG_EXIT_EXITED, 1, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_CONTINUE);
    cr_assert(strstr(d.reason, "max_restarts_on_errors (3) reached"), "%s", d.reason);
    jg_policy_free(p);
}

Test(policy, failure_without_job_recovery_continues)
{
    jg_policy_t *p = load("default");
    jg_error_t err = { "" };
    jg_policy_decision_t d = node_exit(p, 1, JG_EXIT_EXITED, 1, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_CONTINUE);
    cr_assert(strstr(d.reason, "no job_recovery"), "%s", d.reason);
    d = node_exit(p, 1, JG_EXIT_EXITED, 0, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_CONTINUE);
    d = node_exit(p, 0, JG_EXIT_SETUP_FAILED, 2, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_CONTINUE, "setup failures are not retried");
    jg_policy_free(p);
}

Test(policy, lost_and_preempted_nodes_are_recovered_up_to_a_limit)
{
    jg_policy_t *p = load("default");
    jg_error_t err = { "" };
    jg_policy_decision_t d = node_exit(p, 1, JG_EXIT_NODE_LOST, -1, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_RESTART_JOB);
    cr_assert_eq(d.count, JG_POLICY_COUNT_RECOVERIES);
    d = node_exit(p, 0, JG_EXIT_PREEMPTED, -1, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_RESTART_JOB);
    states[1].recoveries = 10;
    d = node_exit(p, 1, JG_EXIT_NODE_LOST, -1, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_CONTINUE);
    cr_assert(strstr(d.reason, "giving up"), "%s", d.reason);
    jg_policy_free(p);
}

Test(policy, fail_fast_fails_the_group_on_the_first_failure)
{
    jg_policy_t *p = load("fail-fast");
    jg_error_t err = { "" };
    jg_policy_decision_t d = node_exit(p, 1, JG_EXIT_EXITED, 1, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_FAIL_GROUP);
    cr_assert_str_eq(d.reason, "fail-fast: server rank 1 exited (exit 1)");
    d = node_exit(p, 1, JG_EXIT_EXITED, 0, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_CONTINUE, "a success is no failure");
    d = node_exit(p, 0, JG_EXIT_EXITED, 29, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_RESTART_JOB, "job_recovery still applies");
    states[1].recoveries = 10;
    d = node_exit(p, 1, JG_EXIT_NODE_LOST, -1, 0, &err);
    cr_assert_eq(d.action, JG_ACTION_FAIL_GROUP);
    jg_policy_free(p);
}

Test(policy, exit_reason_and_action_names_round_trip)
{
    for (int i = 0; i < JG_EXIT_REASON_COUNT; i++) {
        jg_policy_exit_reason_t r;
        cr_assert_eq(jg_policy_exit_reason_parse(jg_policy_exit_reason_name(i), &r), 0);
        cr_assert_eq((int)r, i);
    }
    for (int i = 0; i < JG_ACTION_COUNT; i++) {
        jg_policy_action_t a;
        cr_assert_eq(jg_policy_action_parse(jg_policy_action_name(i), &a), 0);
        cr_assert_eq((int)a, i);
    }
    jg_policy_action_t a;
    cr_assert_eq(jg_policy_action_parse("restart", &a), -1);
    cr_assert_str_eq(jg_policy_action_name(JG_ACTION_COUNT), "unknown");
}

/* ---- on_job_end: primary_tasks ----------------------------------------------------------- */

Test(policy, auxiliaries_are_cancelled_after_the_delay_when_primaries_succeed)
{
    jg_policy_t *p = load("default");
    jg_error_t err = { "" };
    jg_policy_job_end_t je;
    states[0].state = JG_SUCCEEDED;
    cr_assert_eq(jg_policy_on_job_end(p, &group, 0, &je, &err), 0, "%s", err.text);
    cr_assert_eq(je.n_cancel, 1);
    cr_assert_eq(je.cancel[0].job, 1);
    cr_assert_float_eq(je.cancel[0].delay_s, 30, 1e-9);
    cr_assert_str_eq(je.reason, "every primary job succeeded");
    jg_policy_job_end_clear(&je);

    jg_kv_t per_job[] = { { "server", "90" } };
    spec.termination_delays = per_job;
    spec.n_termination_delays = 1;
    cr_assert_eq(jg_policy_on_job_end(p, &group, 0, &je, &err), 0, "%s", err.text);
    cr_assert_float_eq(je.cancel[0].delay_s, 90, 1e-9);
    jg_policy_job_end_clear(&je);
    jg_policy_free(p);
}

Test(policy, auxiliaries_are_cancelled_at_once_when_a_primary_fails)
{
    jg_policy_t *p = load("default");
    jg_error_t err = { "" };
    jg_policy_job_end_t je;
    states[0].state = JG_FAILED;
    cr_assert_eq(jg_policy_on_job_end(p, &group, 0, &je, &err), 0, "%s", err.text);
    cr_assert_eq(je.n_cancel, 1);
    cr_assert_float_eq(je.cancel[0].delay_s, 0, 1e-9);
    jg_policy_job_end_clear(&je);
    jg_policy_free(p);
}

Test(policy, nothing_is_cancelled_while_a_primary_runs_or_without_primaries)
{
    jg_policy_t *p = load("default");
    jg_error_t err = { "" };
    jg_policy_job_end_t je;
    states[1].state = JG_FAILED;                /* the auxiliary ended: primary still runs */
    cr_assert_eq(jg_policy_on_job_end(p, &group, 1, &je, &err), 0, "%s", err.text);
    cr_assert_eq(je.n_cancel, 0);
    cr_assert_null(je.cancel);

    spec.n_primary_tasks = 0;                   /* every job primary: nobody is auxiliary */
    states[0].state = JG_SUCCEEDED;
    states[1].state = JG_RUNNING;
    cr_assert_eq(jg_policy_on_job_end(p, &group, 0, &je, &err), 0, "%s", err.text);
    cr_assert_eq(je.n_cancel, 0);
    jg_policy_free(p);
}

Test(policy, job_end_returns_are_validated)
{
    struct { const char *ret; const char *needle; int n; } cases[] = {
        { "{cancel = {'ghost'}}", "'ghost', which is not a job", 0 },
        { "{cancel = {'server', 'server'}}", "twice", 0 },
        { "{cancel = 'server'}", "list of job names", 0 },
        { "{cancel = {{job = 'server', wait = 1}}}", "unknown key 'wait'", 0 },
        { "{stop = {'server'}}", "unknown key 'stop'", 0 },
        { "true", "must return nil or a table", 0 },
        { "{cancel = {'server', {job = 'trainer', delay = 5}}, delay = 2}", NULL, 2 },
        { "nil", NULL, 0 },
        { "", NULL, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[512];
        snprintf(src, sizeof src, "return { on_job_end = function() return %s end }",
                 cases[i].ret);
        jg_policy_t *p = load_src(src);
        jg_error_t err = { "" };
        jg_policy_job_end_t je;
        int rc = jg_policy_on_job_end(p, &group, 1, &je, &err);
        if (cases[i].needle) {
            cr_assert_eq(rc, -1, "%s", cases[i].ret);
            cr_assert(strstr(err.text, cases[i].needle), "%s: %s", cases[i].ret, err.text);
        } else {
            cr_assert_eq(rc, 0, "%s: %s", cases[i].ret, err.text);
        }
        cr_assert_eq(je.n_cancel, (size_t)cases[i].n, "%s", cases[i].ret);
        if (cases[i].n == 2) {
            cr_assert_eq(je.cancel[0].job + je.cancel[1].job, 1);
            for (int k = 0; k < 2; k++)
                cr_assert_float_eq(je.cancel[k].delay_s, je.cancel[k].job == 0 ? 5 : 2, 1e-9);
        }
        jg_policy_job_end_clear(&je);
        jg_policy_free(p);
    }
}

/* ---- the time budget holds whatever the script calls ---------------------------- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Each body loops on one C library call that does a lot of work without
 * running a Lua instruction (the count hook only fires between instructions).
 * The hook must still be stopped within twice its time budget (plus a little
 * for the machine); the budget is large enough that scheduling noise on a
 * loaded 2-core machine is small against it.  The instruction budget is out
 * of reach, so only the clock can stop them. */
Test(policy, no_c_call_holds_a_hook_past_twice_its_time_budget, .timeout = 120)
{
    /* Sizes stay under the sandbox's 1 MiB block limit, so that it is the
     * clock that has to stop them. */
    static const char *const attacks[] = {
        "while true do table.move({}, 1, (1 << 24) - 2, 2) end",
        "local t = {} while true do table.move(t, 1, 1 << 40, 2) end",
        "while true do local s = string.rep('x', 1000000) end",
        "while true do local s = string.rep('ab', 300000, ',') end",
        "local t = setmetatable({}, {__index = tostring})\n"
        "while true do pcall(table.concat, t, '', 1, 1 << 40) end",
        "local t = setmetatable({}, {__index = tostring})\n"
        "while true do pcall(table.unpack, t, 1, 60000) end",
        "local t = setmetatable({}, {__len = function() return 1 << 40 end})\n"
        "while true do table.remove(t, 1) end",
        "local t = setmetatable({}, {__len = function() return 1 << 40 end})\n"
        "while true do table.insert(t, 1, 0) end",
        "local t = {} for i = 1, 60000 do t[i] = (i * 7919) % 60013 end\n"
        "while true do table.sort(t) table.sort(t, function(a, b) return a > b end) end",
        "local s = string.rep('\\0', 200000) while true do local q = string.format('%q', s) end",
        "local s = string.rep('\\0', 1000000) local x = string.rep('\\0', 1000000)\n"
        "while true do local lt = s < x end",
        "local s = string.rep('a', 500000) while true do local x = s .. s end",
        "local f = string.rep('%c', 100000) while true do pcall(os.date, f) end",
        "local f = string.rep('x', 1000000) while true do pcall(string.pack, f) end",
        "local s = string.rep('a', 1000000) while true do local r = s:gsub('', '') end",
        "local s = string.rep('a', 1000000) while true do local r = s:upper() end",
        "local t = {} for i = 1, 60000 do t[i] = i end for i = 1, 59999 do t[i] = nil end\n"
        "while true do local k = next(t) end",
        "local t = {} for i = 1, 30000 do t[i] = 'x' end\n"
        "while true do print(table.unpack(t)) end",
    };
    const unsigned budget_ms = 300;
    jg_policy_limits_t lim = { .instructions = 1000000000000ull, .time_ms = budget_ms };
    for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++) {
        char src[1024];
        snprintf(src, sizeof src, "return { on_submit = function()\n%s\nend }\n", attacks[i]);
        jg_error_t err = { "" };
        jg_policy_t *p = jg_policy_load_text("attack", src, strlen(src), POLICY_DIR, &lim, &err);
        cr_assert_not_null(p, "%s", err.text);
        jg_policy_admission_t a;
        double t0 = mono_s();
        int rc = jg_policy_on_submit(p, &group, NULL, &a, &err);
        double took = mono_s() - t0;
        cr_log_info("attack %zu took %.3f s: %s", i, took, err.text);
        fprintf(stderr, "attack %zu: %.3f s: %s\n", i, took, err.text);
        cr_expect_eq(rc, -1, "attack %zu was not stopped:\n%s", i, attacks[i]);
        cr_expect(strstr(err.text, "ran past its time budget") ||
                      strstr(err.text, "not allowed in policies") ||
                      strstr(err.text, "pattern too costly"),
                  "attack %zu: %s", i, err.text);
        cr_expect(took < 2 * budget_ms / 1e3 + 0.15,
                  "attack %zu held the hook %.3f s against a budget of %u ms: %s\n%s", i, took,
                  budget_ms, err.text, attacks[i]);
        cr_expect(a.accepted, "the default decision is used");
        jg_policy_free(p);
    }
}
