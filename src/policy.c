/* policy.c - the sandboxed Lua 5.4 engine behind jgsched's decisions.
 *
 * Why it looks like this: a policy is user-written code running inside the
 * daemon that every user's groups depend on, so it must never be able to
 * crash, hang, starve or escape the daemon, and its mistakes must degrade to
 * the default decision instead of to "whatever the C code read".  The shape
 * follows Redis's scripting engine rather than Slurm's job_submit.lua:
 *
 *  - One lua_State per loaded policy, created with our own lua_Alloc that
 *    refuses to grow past a hard cap (ltests.c's debug_realloc is the model);
 *    a string.rep bomb becomes a clean "not enough memory" error.
 *  - Initialisation runs inside a pcall'd C function (lua.c's pmain), so even
 *    an allocation failure while opening libraries is an error, not a panic.
 *  - Only base, table, string, math, utf8 and a three-function `os` are
 *    opened.  load, loadfile, dofile, collectgarbage, warn and string.dump are
 *    gone (no replacement `load`: policies have no reason to compile code);
 *    print goes to the caller's log callback; setmetatable refuses __gc
 *    (finalizers run with hooks disabled, so one could loop forever) and
 *    xpcall runs its handler after unwinding (a handler runs with hooks
 *    disabled when the error came from the count hook); the
 *    string metatable is hidden behind __metatable.  print escapes control
 *    characters and writes at most PRINT_MAX_LINES lines per call.
 *  - No hook holds the daemon much past its time budget, whatever it calls:
 *    the hook also fires on every function call (a coarse clock read); C
 *    functions that can work long in one call (table.move, insert, remove,
 *    concat, unpack, string.rep) do it in slices with a clock check between
 *    them, table.sort compares through a function the hook sees, and the
 *    rest refuse inputs whose cost is out of proportion (patterns, formats);
 *    no single allocation may exceed 1 MiB, which bounds what one VM
 *    instruction (a string comparison, a concatenation) can cost.
 *  - Scripts are loaded as text only (mode "t") with their own _ENV, built
 *    fresh from copies of the libraries, so one script cannot tamper with
 *    another's view (prelude, default, the policy).
 *  - A count hook fires every 32 instructions and checks an instruction
 *    budget and a monotonic deadline.  Once tripped it re-arms itself to fire
 *    on every instruction and raise each time, so a script's own pcall cannot
 *    swallow the kill (Redis's luaMaskCountHook).
 *  - Every call goes through invoke(): budget reset, msgh + a C trampoline
 *    pcall'd, error text copied out with the policy's file:line, stack height
 *    asserted unchanged.  The trampoline builds the snapshot tables and reads
 *    the return inside protected mode (policy_convert.c), so no Lua API call
 *    that can allocate ever runs unprotected.
 *
 * Fallback: a policy other than "default" also loads policies/default.lua in
 * its own state (its missing hooks resolve to those functions, and `jg.default`
 * lets it delegate), and keeps a second, untouched state running default.lua
 * alone.  When a hook fails, the same call is made on that clean state; if even
 * that fails, policy_convert.c's built-in decision is used.  The caller always
 * gets a decision, plus the error text to record.
 */
#include "jgsched/policy.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "jg_config.h"
#include "policy_int.h"

#define HOOK_EVERY 32                   /* instructions between two count-hook checks */
#define MAX_BLOCK (1u << 20)            /* largest single allocation: see capped_alloc() */
#define PATTERN_MAX_STEPS 1e7           /* see guard_pattern() */
#define SLICE_ELEMENTS 4096             /* table elements a wrapper handles between clock checks */
#define SLICE_BYTES (256u << 10)        /* bytes string.rep copies between clock checks */
#define FORMAT_MAX_INPUT (1u << 20)     /* format string + string arguments of string.format */
#define SHORT_FORMAT_MAX 256            /* format of os.date, string.pack/unpack/packsize */
#define PRINT_MAX_LINES 32              /* print lines one call may write to the log */
#define LOG_LINE_MAX 1024

enum { TRIP_NONE = 0, TRIP_INSTRUCTIONS, TRIP_TIME };

/* Per lua_State accounting; the allocator's ud, so the count hook finds it too. */
typedef struct {
    size_t used;
    size_t cap;
    uint64_t instructions;      /* budget per call */
    uint64_t executed;
    unsigned time_ms;
    uint64_t deadline_ns;
    int tripped;
    unsigned printed;           /* print lines of this call */
    char first_error[sizeof(jg_error_t)];   /* msgh's text of the call's first error */
    char traceback[LOG_LINE_MAX];   /* kept by msgh for the log; C-side so that reading it
                                     * back never needs the Lua heap outside a pcall */
} vm_t;

struct jg_policy {
    char *name;
    char *path;                 /* NULL when loaded from text */
    lua_State *L;
    vm_t vm;
    int ref[JG_HOOK_COUNT];     /* registry refs of the resolved hook functions */
    unsigned defined;           /* hooks the script itself defines */
    jg_policy_t *fallback;      /* default.lua alone; NULL when this is default */
};

static const char *const hook_names[JG_HOOK_COUNT] = {
    [JG_HOOK_ON_SUBMIT] = "on_submit",
    [JG_HOOK_PLACE] = "place",
    [JG_HOOK_PRIORITY] = "priority",
    [JG_HOOK_ON_NODE_EXIT] = "on_node_exit",
    [JG_HOOK_ON_JOB_END] = "on_job_end",
};

const char *jg_policy_hook_name(jg_policy_hook_t hook)
{
    return (unsigned)hook < JG_HOOK_COUNT ? hook_names[hook] : "unknown";
}

/* ---- log ------------------------------------------------------------- */

static jg_policy_log_f log_cb;
static void *log_ctx;

void jg_policy_set_log(jg_policy_log_f cb, void *ctx)
{
    log_cb = cb;
    log_ctx = ctx;
}

static void log_line(const char *policy, const char *line)
{
    if (log_cb)
        log_cb(log_ctx, policy, line);
    else
        fprintf(stderr, "policy %s: %s\n", policy, line);
}

/* ---- small helpers ---------------------------------------------------- */

void jg_policy_copy_text(char *dst, size_t size, const char *src, size_t n)
{
    if (size == 0)
        return;
    if (!src)
        n = 0;
    if (n > size - 1)
        n = size - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* True when this program runs from the build tree it was built in (a
 * developer's checkout), where the checkout's policies are the ones to test;
 * an installed program lives elsewhere and so never reads a checkout, even
 * one that still exists where it was built. */
static bool running_from_build_tree(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    size_t len = strlen(JG_BUILD_ROOT);
    return strncmp(exe, JG_BUILD_ROOT, len) == 0 && exe[len] == '/';
}

char *jg_policy_default_dir(void)
{
    const char *env = getenv("JGSCHED_POLICY_DIR");
    if (env && *env)
        return jg_xstrdup(env);
    if (running_from_build_tree())
        return jg_xstrdup(JG_SOURCE_ROOT "/policies");
    return jg_xstrdup(JG_DATADIR "/policies");
}

bool jg_policy_valid_name(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

bool jg_policy_is_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') || (n > 4 && strcmp(s + n - 4, ".lua") == 0);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- memory cap --------------------------------------------------------- */

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    vm_t *vm = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        vm->used -= old;
        return NULL;
    }
    /* Lua collects and retries, then raises LUA_ERRMEM.  The block limit
     * bounds what one VM instruction can cost: comparing two strings (a
     * strcoll per '\0'-separated piece), concatenating, hashing is linear in
     * their length, and the count hook only runs between instructions. */
    if (nsize > old && (nsize - old > vm->cap - vm->used || nsize > MAX_BLOCK))
        return NULL;
    void *q = realloc(ptr, nsize);
    if (!q)
        return NULL;
    vm->used = vm->used - old + nsize;
    return q;
}

/* ---- instruction budget and deadline -------------------------------------- */

/* The count hook fires every HOOK_EVERY instructions, but one instruction can
 * be a call to a C function that works for a long time (table.move of 2^24
 * elements: 0.3 s), and a loop makes hundreds of such calls between two count
 * events.  So the hook also fires on every call (LUA_MASKCALL), where a cheap
 * coarse clock read stops the script before it starts one more; and the C
 * functions whose single call could still run long are replaced by wrappers
 * that look at the clock between slices of their work (checkpoint()).  The
 * overrun past the deadline is then one slice, whatever the script calls. */
#define HOOK_MASK (LUA_MASKCOUNT | LUA_MASKCALL)

static uint64_t coarse_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static vm_t *vm_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

/* Raises the budget error; from now on the hook fires on every instruction
 * and raises each time, so each pcall the script wraps around its loop only
 * buys it one more instruction. */
static int raise_tripped(lua_State *L, vm_t *vm)
{
    lua_sethook(L, lua_gethook(L), HOOK_MASK, 1);
    /* No position here: msgh prefixes the policy's file:line (the innermost
     * frame may be a C function). */
    if (vm->tripped == TRIP_INSTRUCTIONS)
        lua_pushfstring(L, "policy ran past its budget of %I instructions",
                        (lua_Integer)vm->instructions);
    else
        lua_pushfstring(L, "policy ran past its time budget of %d ms", (int)vm->time_ms);
    return lua_error(L);
}

static int msgh(lua_State *L);

static void count_hook(lua_State *L, lua_Debug *ar)
{
    vm_t *vm = vm_of(L);
    if (vm->tripped != TRIP_NONE && ar->event == LUA_HOOKCALL) {
        /* The message handler of the error we raised must run, or the error
         * loses its position and traceback. */
        lua_getinfo(L, "f", ar);
        bool handler = lua_tocfunction(L, -1) == msgh;
        lua_pop(L, 1);
        if (handler)
            return;
    }
    if (vm->tripped == TRIP_NONE) {
        if (ar->event == LUA_HOOKCALL) {
            if (coarse_now_ns() <= vm->deadline_ns)
                return;
            vm->tripped = TRIP_TIME;
        } else {
            vm->executed += HOOK_EVERY;
            if (vm->executed > vm->instructions)
                vm->tripped = TRIP_INSTRUCTIONS;
            else if (now_ns() > vm->deadline_ns)
                vm->tripped = TRIP_TIME;
            else
                return;
        }
    }
    raise_tripped(L, vm);
}

/* For wrappers of C functions that work in slices: raises the budget error
 * once the deadline has passed. */
static void checkpoint(lua_State *L)
{
    vm_t *vm = vm_of(L);
    if (vm->tripped == TRIP_NONE && now_ns() <= vm->deadline_ns)
        return;
    if (vm->tripped == TRIP_NONE)
        vm->tripped = TRIP_TIME;
    raise_tripped(L, vm);
}

static void reset_budget(lua_State *L, vm_t *vm)
{
    vm->executed = 0;
    vm->tripped = TRIP_NONE;
    vm->printed = 0;
    vm->deadline_ns = now_ns() + (uint64_t)vm->time_ms * 1000000u;
    lua_sethook(L, count_hook, HOOK_MASK, HOOK_EVERY);
}

/* ---- sandboxed library functions -------------------------------------------- */

/* One log line per call, control characters escaped (a policy must not be
 * able to write what looks like a line of the daemon's own), at most
 * PRINT_MAX_LINES lines per hook call so that a loop cannot flood the log. */
static int sandbox_print(lua_State *L)
{
    jg_policy_t *p = lua_touserdata(L, lua_upvalueindex(1));
    vm_t *vm = vm_of(L);
    if (vm->printed >= PRINT_MAX_LINES) {
        if (vm->printed++ == PRINT_MAX_LINES)
            log_line(p->name, "(more print output of this call suppressed)");
        return 0;
    }
    vm->printed++;
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n && luaL_bufflen(&b) < LOG_LINE_MAX; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);     /* honours __tostring (Lua code: budgeted) */
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    char line[LOG_LINE_MAX];
    jg_log_escape(line, sizeof line, s, len);
    log_line(p->name, line);
    return 0;
}

/* Finalizers run with debug hooks disabled (lgc.c GCTM), so an endless loop
 * in __gc could never be stopped: refuse such metatables outright. */
static int sandbox_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed in policies");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* xpcall(f, h, ...) whose handler h runs after the stack unwound, as plain
 * code.  The real xpcall runs h at the point of the error; when that error
 * is our budget kill (raised from the count hook) hooks are still disabled
 * there, so `xpcall(loop, function() while true do end end)` could never be
 * stopped.  Without the debug library a handler cannot tell the difference. */
static int sandbox_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    for (int i = 3; i <= n; i++)
        lua_pushvalue(L, i);
    if (lua_pcall(L, n > 2 ? n - 2 : 0, LUA_MULTRET, 0) == LUA_OK) {
        lua_pushboolean(L, 1);
        lua_insert(L, n + 1);
        return lua_gettop(L) - n;
    }
    lua_pushvalue(L, 2);
    lua_insert(L, -2);
    lua_pcall(L, 1, 1, 0);      /* the handler's result, or its own error */
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

/* string.rep: Lua's own copies piece by piece (string.rep("", 2^62) loops
 * 2^62 times copying nothing; string.rep("x", 2^25) makes 2^25 one-byte
 * copies).  This one doubles what it has written, at most SLICE_BYTES at a
 * time with a clock check in between; the memory cap bounds the result. */
static int sandbox_rep(lua_State *L)
{
    size_t l, lsep;
    const char *s = luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *sep = luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    size_t unit = l + lsep;
    if (unit < l || (lua_Unsigned)n > (SIZE_MAX / 2) / unit)
        return luaL_error(L, "resulting string too large");
    size_t total = (size_t)n * unit - lsep;
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, total);      /* the memory cap may refuse it */
    memcpy(out, s, l);
    if (lsep && total > l)
        memcpy(out + l, sep, lsep);
    size_t done = total < unit ? total : unit;
    while (done < total) {
        /* out is periodic with period unit: copying from the offset
         * done % unit continues the pattern. */
        size_t from = done % unit, chunk = done - from;
        if (chunk > total - done)
            chunk = total - done;
        if (chunk > SLICE_BYTES)
            chunk = SLICE_BYTES;
        memcpy(out + done, out + from, chunk);
        done += chunk;
        checkpoint(L);
    }
    luaL_pushresultsize(&b, total);
    return 1;
}

enum { PAT_MATCH = 0, PAT_FIND, PAT_GMATCH };

/* Lua's pattern matcher backtracks: with k repetition items (and %b, and
 * back-references, each a scan of its own) a failing match costs up to about
 * m * n^(k+1) steps on an n-byte subject (n^k per start position), all inside
 * C where the count hook never fires.  Refuse calls whose worst case exceeds
 * PATTERN_MAX_STEPS; ordinary policy matching (names, labels, short commands)
 * is orders of magnitude below it. */
static int guard_pattern(lua_State *L)
{
    size_t n, m;
    luaL_checklstring(L, 1, &n);
    const char *pat = luaL_checklstring(L, 2, &m);
    int mode = (int)lua_tointeger(L, lua_upvalueindex(2));
    bool plain = mode == PAT_FIND && lua_toboolean(L, 4);
    int k = 0;
    bool anchored = !plain && mode != PAT_GMATCH && m > 0 && pat[0] == '^';
    if (!plain) {
        for (size_t i = 0; i < m; i++) {
            if (pat[i] == '%') {
                i++;
                if (i < m && (pat[i] == 'b' || isdigit((unsigned char)pat[i])))
                    k++;
                continue;
            }
            if (pat[i] == '*' || pat[i] == '+' || pat[i] == '-' || pat[i] == '?')
                k++;
        }
    }
    double cost = (double)(m + 1);
    for (int i = 0; i < k + (anchored ? 0 : 1) && cost <= PATTERN_MAX_STEPS; i++)
        cost *= (double)(n + 1);
    if (cost > PATTERN_MAX_STEPS)
        return luaL_error(L, "pattern too costly for the policy sandbox (%d repetition "
                             "items on a %I-byte subject)", k, (lua_Integer)n);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Calls the original function (upvalue 1) with every argument. */
static int call_original(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* table.move(a, 1, 2^40, 2) loops in C (nils cost no memory to write): the
 * original is called on slices of SLICE_ELEMENTS, in the order that keeps an
 * overlapping move correct, with a clock check between them. */
static int sandbox_move(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = lua_isnoneornil(L, 5) ? 1 : 5;
    if (e < f || (lua_Unsigned)e - (lua_Unsigned)f < SLICE_ELEMENTS)
        return call_original(L);
    luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
    lua_Integer n = e - f + 1;
    luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
    /* Overlapping within one table with the destination above the source:
     * the original moves downwards from the end, and so do the slices. */
    bool down = t > f && t <= e && (tt == 1 || lua_rawequal(L, 1, tt));
    lua_Integer slices = (n - 1) / SLICE_ELEMENTS + 1;
    for (lua_Integer i = 0; i < slices; i++) {
        lua_Integer k = (down ? slices - 1 - i : i) * SLICE_ELEMENTS;
        lua_Integer len = n - k < SLICE_ELEMENTS ? n - k : SLICE_ELEMENTS;
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_pushvalue(L, 1);
        lua_pushinteger(L, f + k);
        lua_pushinteger(L, f + k + len - 1);
        lua_pushinteger(L, t + k);
        lua_pushvalue(L, tt);
        lua_call(L, 5, 0);
        checkpoint(L);
    }
    lua_pushvalue(L, tt);
    return 1;
}

/* table.insert(t, pos, v) and table.remove(t, pos) shift every element after
 * pos, and #t can be anything a __len metamethod says: the same shifts as
 * Lua's (ltablib.c tinsert/tremove), with a clock check every SLICE_ELEMENTS. */
static lua_Integer table_len(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    return luaL_len(L, 1);
}

static int sandbox_insert(lua_State *L)
{
    lua_Integer e = table_len(L);
    e = (lua_Integer)((lua_Unsigned)e + 1u);   /* first empty element */
    lua_Integer pos;
    switch (lua_gettop(L)) {
    case 2:
        pos = e;
        break;
    case 3:
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
        for (lua_Integer i = e; i > pos; i--) {
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
            if ((e - i) % SLICE_ELEMENTS == SLICE_ELEMENTS - 1)
                checkpoint(L);
        }
        break;
    default:
        return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

static int sandbox_remove(lua_State *L)
{
    lua_Integer size = table_len(L);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size)
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2,
                      "position out of bounds");
    lua_geti(L, 1, pos);
    for (lua_Integer done = 0; pos < size; pos++, done++) {
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
        if (done % SLICE_ELEMENTS == SLICE_ELEMENTS - 1)
            checkpoint(L);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

/* table.concat(t, sep, i, j): Lua's, with a clock check every SLICE_ELEMENTS
 * elements (each lua_geti may run an __index function written in C). */
static int sandbox_concat(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t lsep;
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    lua_Integer last = lua_isnoneornil(L, 4) ? luaL_len(L, 1) : luaL_checkinteger(L, 4);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (lua_Integer done = 0; i <= last; i++, done++) {
        lua_geti(L, 1, i);
        if (!lua_isstring(L, -1))
            return luaL_error(L, "invalid value (at index %I) in table for 'concat'", i);
        luaL_addvalue(&b);
        if (i == last)
            break;                      /* i + 1 could overflow */
        luaL_addlstring(&b, sep, lsep);
        if (done % SLICE_ELEMENTS == SLICE_ELEMENTS - 1)
            checkpoint(L);
    }
    luaL_pushresult(&b);
    return 1;
}

/* table.unpack(t, i, j): up to a million values (the stack limit), each
 * lua_geti possibly a C __index: a clock check every SLICE_ELEMENTS. */
static int sandbox_unpack(lua_State *L)
{
    lua_Integer i = luaL_optinteger(L, 2, 1);
    lua_Integer e = lua_isnoneornil(L, 3) ? luaL_len(L, 1) : luaL_checkinteger(L, 3);
    if (i > e)
        return 0;
    lua_Unsigned n = (lua_Unsigned)e - (lua_Unsigned)i;
    if (n >= (unsigned int)INT_MAX || !lua_checkstack(L, (int)(++n)))
        return luaL_error(L, "too many results to unpack");
    for (lua_Unsigned k = 0; k < n; k++) {
        lua_geti(L, 1, i + (lua_Integer)k);
        if (k % SLICE_ELEMENTS == SLICE_ELEMENTS - 1)
            checkpoint(L);
    }
    return (int)n;
}

static int sort_less(lua_State *L)
{
    lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
    return 1;
}

/* table.sort without a comparison function compares in C, n log n times,
 * without a call the hook would see: give it one (sort_less), so the call
 * hook looks at the clock between comparisons. */
static int sandbox_sort(lua_State *L)
{
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_pushcfunction(L, sort_less);
    }
    return call_original(L);
}

/* string.format: the work is linear in the format and the strings it copies
 * (%q escapes byte by byte); refuse inputs no policy message needs. */
static int sandbox_format(lua_State *L)
{
    size_t total = 0, len;
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        if (lua_type(L, i) == LUA_TSTRING) {
            lua_tolstring(L, i, &len);
            total += len;
        }
    }
    if (total > FORMAT_MAX_INPUT)
        return luaL_error(L, "string.format of more than %d bytes of text is not allowed in "
                             "policies", (int)FORMAT_MAX_INPUT);
    return call_original(L);
}

/* os.date and string.pack/unpack/packsize do work per character of their
 * format (strftime for each %c): policies need short formats only. */
static int sandbox_short_format(lua_State *L)
{
    size_t len;
    int arg = (int)lua_tointeger(L, lua_upvalueindex(2));
    if (lua_type(L, arg) == LUA_TSTRING && (lua_tolstring(L, arg, &len), len > SHORT_FORMAT_MAX))
        return luaL_error(L, "a format of more than %d characters is not allowed in policies",
                          SHORT_FORMAT_MAX);
    return call_original(L);
}

/* Replaces lib[name] (table at the top) by cfn with the original as upvalue 1
 * (and extra as upvalue 2 when has_extra). */
static void wrap_field(lua_State *L, const char *name, lua_CFunction cfn, int has_extra,
                       int extra)
{
    lua_getfield(L, -1, name);
    if (has_extra)
        lua_pushinteger(L, extra);
    lua_pushcclosure(L, cfn, has_extra ? 2 : 1);
    lua_setfield(L, -2, name);
}

/* What a script's _ENV may hold from the base library. */
static const char *const safe_base[] = {
    "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print",
    "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable", "tonumber",
    "tostring", "type", "xpcall", "_VERSION", NULL,
};
static const char *const safe_libs[] = { "string", "table", "math", "utf8", "os", NULL };

/* Opens the libraries into the (unreachable) globals table and trims them. */
static void open_sandbox(lua_State *L, jg_policy_t *p)
{
    static const luaL_Reg libs[] = {
        { LUA_GNAME, luaopen_base },         { LUA_TABLIBNAME, luaopen_table },
        { LUA_STRLIBNAME, luaopen_string },  { LUA_MATHLIBNAME, luaopen_math },
        { LUA_UTF8LIBNAME, luaopen_utf8 },
    };
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);     /* not global: only a subset is */

    /* os: time, clock, date only. */
    lua_createtable(L, 0, 3);
    static const char *const os_keep[] = { "time", "clock", "date" };
    for (size_t i = 0; i < 3; i++) {
        lua_getfield(L, -2, os_keep[i]);
        lua_setfield(L, -2, os_keep[i]);
    }
    wrap_field(L, "date", sandbox_short_format, 1, 1);
    lua_setglobal(L, "os");
    lua_pop(L, 1);

    static const char *const drop[] = { "dofile", "loadfile", "load", "collectgarbage", "warn",
                                        "require", "module", "loadstring", NULL };
    for (size_t i = 0; drop[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, drop[i]);
    }

    lua_pushlightuserdata(L, p);
    lua_pushcclosure(L, sandbox_print, 1);
    lua_setglobal(L, "print");

    lua_getglobal(L, "setmetatable");
    lua_pushcclosure(L, sandbox_setmetatable, 1);
    lua_setglobal(L, "setmetatable");

    lua_pushcfunction(L, sandbox_xpcall);
    lua_setglobal(L, "xpcall");

    /* The string table is also every string's __index: trim it in place. */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    wrap_field(L, "rep", sandbox_rep, 0, 0);
    wrap_field(L, "find", guard_pattern, 1, PAT_FIND);
    wrap_field(L, "match", guard_pattern, 1, PAT_MATCH);
    wrap_field(L, "gmatch", guard_pattern, 1, PAT_GMATCH);
    wrap_field(L, "gsub", guard_pattern, 1, PAT_MATCH);
    wrap_field(L, "format", sandbox_format, 0, 0);
    wrap_field(L, "pack", sandbox_short_format, 1, 1);
    wrap_field(L, "packsize", sandbox_short_format, 1, 1);
    wrap_field(L, "unpack", sandbox_short_format, 1, 1);
    lua_pop(L, 1);

    lua_getglobal(L, LUA_TABLIBNAME);
    wrap_field(L, "move", sandbox_move, 0, 0);
    wrap_field(L, "sort", sandbox_sort, 0, 0);
    static const luaL_Reg table_own[] = {
        { "insert", sandbox_insert }, { "remove", sandbox_remove },
        { "concat", sandbox_concat }, { "unpack", sandbox_unpack }, { NULL, NULL },
    };
    luaL_setfuncs(L, table_own, 0);
    lua_pop(L, 1);

    /* getmetatable("") returns false: the shared string metatable (and, via
     * its __index, the real string table) stays out of reach. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}

static void push_shallow_copy(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

#define REG_PRELUDE "jgsched.prelude"
#define REG_DEFAULT "jgsched.default"

/* Pushes a fresh _ENV: copies of the safe functions and libraries, _G = itself,
 * and (with_jg) a copy of the prelude table as `jg`, with jg.default holding
 * default.lua's hooks when with_default. */
static void push_env(lua_State *L, bool with_jg, bool with_default)
{
    lua_createtable(L, 0, 32);
    for (size_t i = 0; safe_base[i]; i++) {
        lua_getglobal(L, safe_base[i]);
        lua_setfield(L, -2, safe_base[i]);
    }
    for (size_t i = 0; safe_libs[i]; i++) {
        lua_getglobal(L, safe_libs[i]);
        push_shallow_copy(L, -1);
        lua_setfield(L, -3, safe_libs[i]);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    if (with_jg) {
        lua_getfield(L, LUA_REGISTRYINDEX, REG_PRELUDE);
        push_shallow_copy(L, -1);
        lua_remove(L, -2);
        if (with_default) {
            lua_getfield(L, LUA_REGISTRYINDEX, REG_DEFAULT);
            push_shallow_copy(L, -1);
            lua_remove(L, -2);
            lua_setfield(L, -2, "default");
        }
        lua_setfield(L, -2, "jg");
    }
}

/* ---- error text --------------------------------------------------------- */

/* "name:123: ..." already says where. */
static bool has_position(const char *s)
{
    const char *c = s;
    while (*c && *c != ':' && !isspace((unsigned char)*c))
        c++;
    if (*c != ':' || c == s)
        return false;
    c++;
    if (!isdigit((unsigned char)*c))
        return false;
    while (isdigit((unsigned char)*c))
        c++;
    return *c == ':';
}

/* Message handler: make sure the text names the policy's file:line (errors
 * raised by C functions such as string.rep carry none) and keep a traceback
 * for the log. */
static int msgh(lua_State *L)
{
    /* No __tostring here: after a kill raised from the count hook, hooks are
     * still disabled while the handler runs, so no Lua code may run. */
    const char *msg = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER
                          ? lua_tostring(L, 1)
                          : lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    if (!has_position(msg)) {
        lua_Debug ar;
        for (int level = 1; lua_getstack(L, level, &ar); level++) {
            lua_getinfo(L, "Sl", &ar);
            if (ar.currentline > 0) {
                msg = lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
                break;
            }
        }
    }
    /* Only the first error of a call is kept: once a budget is tripped, the
     * closing of to-be-closed values (a luaL_Buffer's box) raises it again,
     * from where no policy line is on the stack. */
    vm_t *vm = vm_of(L);
    if (!vm->first_error[0]) {
        jg_policy_copy_text(vm->first_error, sizeof vm->first_error, msg, strlen(msg));
        luaL_traceback(L, L, msg, 1);
        size_t n;
        const char *tb = lua_tolstring(L, -1, &n);
        jg_policy_copy_text(vm->traceback, sizeof vm->traceback, tb, n);
    }
    lua_pushstring(L, msg);
    return 1;
}

/* Copies the error at the top of the stack (status st) into err, logs the
 * traceback if one was kept.  Runs outside any pcall: it must not allocate
 * on the Lua heap (no lua_getfield with a new key, no number conversion). */
static void copy_error(jg_policy_t *p, int st, const char *what, jg_error_t *err)
{
    lua_State *L = p->L;
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (p->vm.first_error[0])
        msg = p->vm.first_error;
    if (st == LUA_ERRMEM)
        msg = "not enough memory (policy memory limit reached, or a single string or table "
              "over 1 MiB)";
    else if (st == LUA_ERRERR)
        msg = "error while reporting an error (memory limit reached?)";
    else if (!msg)
        msg = "unknown error";
    if (what)
        jg_errprintf(err, "%s: %s", what, msg);
    else
        jg_errprintf(err, "%s", msg);
    if (p->vm.traceback[0])
        log_line(p->name, p->vm.traceback);
    p->vm.traceback[0] = '\0';
    p->vm.first_error[0] = '\0';
}

/* ---- the one call helper ------------------------------------------------------ */

/* Runs fn(ud) in protected mode with the budget reset and msgh installed.
 * Returns 0, or -1 with err = "<what>: <file:line: message>". */
static int protected_run(jg_policy_t *p, lua_CFunction fn, void *ud, const char *what,
                         jg_error_t *err)
{
    lua_State *L = p->L;
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 8))
        return jg_errprintf(err, "%s: not enough memory", what ? what : p->name);
    reset_budget(L, &p->vm);
    p->vm.traceback[0] = '\0';
    p->vm.first_error[0] = '\0';
    lua_pushcfunction(L, msgh);
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, ud);
    int st = lua_pcall(L, 1, 0, top + 1);
    int rc = 0;
    if (st != LUA_OK) {
        copy_error(p, st, what, err);
        rc = -1;
    }
    lua_settop(L, top);
    assert(lua_gettop(L) == top);
    lua_sethook(L, NULL, 0, 0);     /* disarmed between calls; reset_budget re-arms */
    return rc;
}

typedef struct {
    jg_policy_t *p;
    jg_policy_call_t *c;
} trampoline_t;

static int call_trampoline(lua_State *L)
{
    trampoline_t *t = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->p->ref[t->c->hook]);
    int nargs = jg_policy_push_args(L, t->c);
    lua_call(L, nargs, LUA_MULTRET);
    jg_policy_read_results(L, t->c, 1, lua_gettop(L));
    return 0;
}

static int invoke(jg_policy_t *p, jg_policy_call_t *c, jg_error_t *err)
{
    trampoline_t t = { p, c };
    bool own = p->defined & (1u << c->hook);
    snprintf(c->label, sizeof c->label, "%.70s.lua", own ? p->name : "default");
    return protected_run(p, call_trampoline, &t, hook_names[c->hook], err);
}

/* The policy, else default.lua in its clean state, else the built-in rule. */
static int run_hook(jg_policy_t *p, jg_policy_call_t *c, jg_error_t *err)
{
    if (invoke(p, c, err) == 0)
        return 0;
    jg_error_t ferr = { "" };
    if (p->fallback && invoke(p->fallback, c, &ferr) == 0)
        return -1;
    if (p->fallback && err) {
        size_t n = strlen(err->text);
        snprintf(err->text + n, sizeof err->text - n, " (default policy failed too: %s)",
                 ferr.text);
    }
    jg_policy_builtin(c);
    return -1;
}

/* ---- loading ------------------------------------------------------------------- */

typedef struct {
    const char *text;
    size_t len;
    char chunkname[80];         /* "@name.lua" */
} script_t;

typedef struct {
    jg_policy_t *p;
    const script_t *prelude;
    const script_t *deflt;
    const script_t *user;       /* NULL when p is the default policy */
} init_t;

static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 31 || lb > 31)
        return 99;
    int d[32][32];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* Loads and runs one script in env (at env_idx); leaves its return value. */
static void run_script(lua_State *L, vm_t *vm, const script_t *s, int env_idx)
{
    if (luaL_loadbufferx(L, s->text, s->len, s->chunkname, "t") != LUA_OK)
        lua_error(L);
    lua_pushvalue(L, env_idx);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
    reset_budget(L, vm);
    lua_call(L, 0, 1);
}

/* Checks the hooks table at the top (returned by s) and stores refs for every
 * hook it defines; returns the bitmask of defined hooks. */
static unsigned take_hooks(lua_State *L, jg_policy_t *p, const script_t *s)
{
    const char *label = s->chunkname + 1;
    if (lua_type(L, -1) != LUA_TTABLE)
        luaL_error(L, "%s: a policy must return a table of hooks, not a %s value", label,
                   luaL_typename(L, -1));
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: the hooks table has a %s key; keys are hook names", label,
                       luaL_typename(L, -2));
        const char *key = lua_tostring(L, -2);
        int h = -1, best = -1, best_d = 99;
        for (int i = 0; i < JG_HOOK_COUNT; i++) {
            if (strcmp(key, hook_names[i]) == 0)
                h = i;
            int d = edit_distance(key, hook_names[i]);
            if (d < best_d) {
                best_d = d;
                best = i;
            }
        }
        if (h < 0) {
            if (best_d <= 3)
                luaL_error(L, "%s: unknown hook '%s' (did you mean '%s'?)", label, key,
                           hook_names[best]);
            luaL_error(L, "%s: unknown hook '%s' (hooks are on_submit, place, priority, "
                          "on_node_exit, on_job_end)", label, key);
        }
        if (lua_type(L, -1) != LUA_TFUNCTION)
            luaL_error(L, "%s: hook '%s' is a %s value, not a function", label, key,
                       luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    unsigned mask = 0;
    for (int i = 0; i < JG_HOOK_COUNT; i++) {
        if (lua_getfield(L, t, hook_names[i]) == LUA_TFUNCTION) {
            if (p->ref[i] != LUA_NOREF)
                luaL_unref(L, LUA_REGISTRYINDEX, p->ref[i]);
            p->ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
            mask |= 1u << i;
        } else {
            lua_pop(L, 1);
        }
    }
    return mask;
}

static int init_state(lua_State *L)
{
    init_t *in = lua_touserdata(L, 1);
    jg_policy_t *p = in->p;
    lua_settop(L, 0);
    open_sandbox(L, p);

    push_env(L, false, false);
    run_script(L, &p->vm, in->prelude, 1);
    if (lua_type(L, -1) != LUA_TTABLE)
        return luaL_error(L, "prelude.lua must return a table");
    lua_setfield(L, LUA_REGISTRYINDEX, REG_PRELUDE);
    lua_settop(L, 0);

    push_env(L, true, false);
    run_script(L, &p->vm, in->deflt, 1);
    unsigned mask = take_hooks(L, p, in->deflt);
    if (mask != (1u << JG_HOOK_COUNT) - 1) {
        for (int i = 0; i < JG_HOOK_COUNT; i++)
            if (!(mask & (1u << i)))
                return luaL_error(L, "%s: the default policy must define every hook; '%s' "
                                     "is missing", in->deflt->chunkname + 1, hook_names[i]);
    }
    /* Only the hooks, as jg.default for the policy to delegate to. */
    lua_createtable(L, 0, JG_HOOK_COUNT);
    for (int i = 0; i < JG_HOOK_COUNT; i++) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->ref[i]);
        lua_setfield(L, -2, hook_names[i]);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, REG_DEFAULT);
    lua_settop(L, 0);

    if (in->user) {
        push_env(L, true, true);
        run_script(L, &p->vm, in->user, 1);
        p->defined = take_hooks(L, p, in->user);
    } else {
        p->defined = mask;
    }
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}

static void fill_limits(vm_t *vm, const jg_policy_limits_t *limits)
{
    vm->cap = limits && limits->memory_bytes ? limits->memory_bytes : JG_POLICY_DEFAULT_MEMORY;
    vm->instructions = limits && limits->instructions ? limits->instructions
                                                      : JG_POLICY_DEFAULT_INSTRUCTIONS;
    vm->time_ms = limits && limits->time_ms ? limits->time_ms : JG_POLICY_DEFAULT_TIME_MS;
}

static int panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "jgsched: unprotected error in a policy: %s\n", msg ? msg : "?");
    abort();
}

void jg_policy_free(jg_policy_t *p)
{
    if (!p)
        return;
    if (p->L)
        lua_close(p->L);
    jg_policy_free(p->fallback);
    free(p->name);
    free(p->path);
    free(p);
}

/* One state: prelude, default, and the user script unless user is NULL. */
static jg_policy_t *build(const char *name, const char *path, const script_t *prelude,
                          const script_t *deflt, const script_t *user,
                          const jg_policy_limits_t *limits, jg_error_t *err)
{
    jg_policy_t *p = jg_xcalloc(1, sizeof *p);
    init_t in = { p, prelude, deflt, user };
    p->name = jg_xstrdup(name);
    p->path = jg_xstrdup(path);
    for (int i = 0; i < JG_HOOK_COUNT; i++)
        p->ref[i] = LUA_NOREF;
    fill_limits(&p->vm, limits);
    p->L = lua_newstate(capped_alloc, &p->vm);
    if (!p->L) {
        jg_errprintf(err, "policy %s: not enough memory for a Lua state (limit %zu bytes)",
                     name, p->vm.cap);
        goto fail;
    }
    lua_atpanic(p->L, panic);
    if (protected_run(p, init_state, &in, NULL, err) < 0) {
        jg_errprefix(err, "cannot load policy %s", name);
        goto fail;
    }
    return p;
fail:
    jg_policy_free(p);
    return NULL;
}

/* Never blocks and reads regular files only: a FIFO or a device given as a
 * policy must not hang `jgsched policy` or the submitting CLI. */
/* Whether root may run what st describes: root's, and no one else may write it. */
static bool root_only(const struct stat *st)
{
    return st->st_uid == 0 && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* Reads a policy file; installed (a file of the policy directory): run as
 * root, only a file that root alone may change, in a directory root alone
 * may change, is read, so no user can put Lua in the root daemon's path by
 * editing an installed policy (say, one in a checkout a developer built). */
static char *read_policy_file(const char *path, bool installed, size_t *len, jg_error_t *err)
{
    char *buf = NULL;
    if (installed && geteuid() == 0) {
        char *dir = jg_xstrdup(path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *(slash == dir ? slash + 1 : slash) = '\0';
        struct stat dst;
        bool ok = stat(slash ? dir : ".", &dst) == 0 && root_only(&dst);
        if (!ok)
            jg_errprintf(err, "refusing to run %s as root: its directory %s is not root's "
                         "alone (owner uid %d, mode %04o)", path, slash ? dir : ".",
                         (int)dst.st_uid, (unsigned)(dst.st_mode & 07777));
        free(dir);
        if (!ok) {
            errno = EPERM;
            return NULL;
        }
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        jg_errprintf(err, "cannot read %s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        jg_errprintf(err, "cannot read %s: not a regular file", path);
        goto done;
    }
    if (installed && geteuid() == 0 && !root_only(&st)) {
        jg_errprintf(err, "refusing to run %s as root: it is not root's alone (owner uid %d, "
                     "mode %04o)", path, (int)st.st_uid, (unsigned)(st.st_mode & 07777));
        errno = EPERM;
        goto done;
    }
    if ((size_t)st.st_size > JG_POLICY_MAX_TEXT) {
        jg_errprintf(err, "cannot read %s: larger than a policy may be (%u KiB)", path,
                     JG_POLICY_MAX_TEXT >> 10);
        goto done;
    }
    buf = jg_xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            jg_errprintf(err, "cannot read %s: %s", path, strerror(errno));
            free(buf);
            buf = NULL;
            goto done;
        }
        if (r == 0)
            break;      /* shrank while reading: take what is there */
        got += (size_t)r;
    }
    buf[got] = '\0';
    *len = got;
done:
    close(fd);
    return buf;
}

char *jg_policy_read_file(const char *path, size_t *len, jg_error_t *err)
{
    return read_policy_file(path, false, len, err);
}

static void set_chunkname(script_t *s, const char *name)
{
    snprintf(s->chunkname, sizeof s->chunkname, "@%.70s.lua", name);
}

/* "(available: default, fail-fast, ...)" for a missing policy name. */
static void list_policies(const char *dir, char *out, size_t size)
{
    out[0] = '\0';
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t used = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".lua") != 0 ||
            !jg_policy_valid_name(e->d_name, n - 4))
            continue;
        int w = snprintf(out + used, size - used, "%s%.*s", used ? ", " : "", (int)(n - 4),
                         e->d_name);
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
    }
    closedir(d);
}

static jg_policy_t *load_common(const char *name, const char *path, const char *text,
                                size_t len, bool is_default, const char *policy_dir,
                                const jg_policy_limits_t *limits, jg_error_t *err)
{
    jg_policy_t *p = NULL;
    char *default_path = NULL;
    char *default_text = NULL;
    size_t default_len = 0;
    if (!policy_dir) {
        jg_errprintf(err, "cannot load policy %s: no policy directory", name);
        goto done;
    }
    default_path = jg_xasprintf("%s/default.lua", policy_dir);
    if (!(is_default && text) &&
        !(default_text = read_policy_file(default_path, true, &default_len, err))) {
        jg_errprefix(err, "cannot load policy %s", name);
        goto done;
    }
    /* The prelude is built in (scripts/embed.py), so a policy directory is
     * whole on its own. */
    script_t prelude = { jg_prelude_lua, jg_prelude_lua_len, "" };
    set_chunkname(&prelude, "prelude");
    script_t deflt = { default_text, default_len, "" };
    set_chunkname(&deflt, "default");
    script_t user = { text, len, "" };
    set_chunkname(&user, name);
    if (is_default) {
        if (text) {             /* default given as text: it IS the default */
            deflt.text = text;
            deflt.len = len;
        }
        p = build(name, path ? path : (text ? NULL : default_path), &prelude, &deflt, NULL,
                  limits, err);
        goto done;
    }
    p = build(name, path, &prelude, &deflt, &user, limits, err);
    if (!p)
        goto done;
    p->fallback = build("default", default_path, &prelude, &deflt, NULL, limits, err);
    if (!p->fallback) {
        jg_policy_free(p);
        p = NULL;
    }
done:
    free(default_path);
    free(default_text);
    return p;
}

jg_policy_t *jg_policy_load(const char *name_or_path, const char *policy_dir,
                            const jg_policy_limits_t *limits, jg_error_t *err)
{
    if (!name_or_path || !*name_or_path) {
        jg_errprintf(err, "no policy name given");
        return NULL;
    }
    size_t n = strlen(name_or_path);
    bool is_path = jg_policy_is_path(name_or_path);
    jg_policy_t *p = NULL;
    char *path = NULL, *name = NULL, *text = NULL;
    size_t len = 0;
    if (is_path) {
        path = jg_xstrdup(name_or_path);
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t bl = strlen(base);
        name = jg_xstrndup(base, bl > 4 && strcmp(base + bl - 4, ".lua") == 0 ? bl - 4 : bl);
    } else {
        if (!jg_policy_valid_name(name_or_path, n)) {
            jg_errprintf(err, "'%s' is not a policy name (letters, digits, '-' and '_') nor "
                              "a path to a .lua file", name_or_path);
            goto done;
        }
        if (!policy_dir) {
            jg_errprintf(err, "cannot load policy %s: no policy directory", name_or_path);
            goto done;
        }
        name = jg_xstrdup(name_or_path);
        path = jg_xasprintf("%s/%s.lua", policy_dir, name);
        if (strcmp(name, "default") == 0) {
            p = load_common(name, path, NULL, 0, true, policy_dir, limits, err);
            goto done;
        }
    }
    if (!(text = read_policy_file(path, !is_path, &len, err))) {
        if (!is_path && errno == ENOENT) {
            char avail[256];
            list_policies(policy_dir, avail, sizeof avail);
            jg_errprintf(err, "no policy named '%s' in %s%s%s%s", name, policy_dir,
                         avail[0] ? " (available: " : "", avail, avail[0] ? ")" : "");
        }
        goto done;
    }
    p = load_common(name, path, text, len, false, policy_dir, limits, err);
done:
    free(path);
    free(name);
    free(text);
    return p;
}

jg_policy_t *jg_policy_load_text(const char *name, const char *text, size_t len,
                                 const char *policy_dir, const jg_policy_limits_t *limits,
                                 jg_error_t *err)
{
    if (!name || !jg_policy_valid_name(name, strlen(name))) {
        jg_errprintf(err, "'%s' is not a policy name (letters, digits, '-' and '_')",
                     name ? name : "");
        return NULL;
    }
    if (!text) {
        jg_errprintf(err, "cannot load policy %s: no text", name);
        return NULL;
    }
    return load_common(name, NULL, text, len, strcmp(name, "default") == 0, policy_dir,
                       limits, err);
}

const char *jg_policy_name(const jg_policy_t *p)
{
    return p->name;
}

const char *jg_policy_path(const jg_policy_t *p)
{
    return p->path;
}

unsigned jg_policy_hooks(const jg_policy_t *p)
{
    return p->defined;
}

size_t jg_policy_memory(const jg_policy_t *p)
{
    return p->vm.used + (p->fallback ? p->fallback->vm.used : 0);
}

/* ---- hook calls ----------------------------------------------------------------- */

/* Checks what every call needs; on a bad call fills the built-in decision. */
static int check_call(jg_policy_t *p, jg_policy_call_t *c, bool need_jobs, jg_error_t *err)
{
    const jg_policy_group_t *g = c->group;
    if (!p || !g || !g->spec) {
        jg_policy_builtin(c);
        return jg_errprintf(err, "%s: called without a policy or a group", hook_names[c->hook]);
    }
    if (need_jobs && (!g->jobs || c->job >= g->spec->n_jobs)) {
        jg_policy_builtin(c);
        return jg_errprintf(err, "%s: called without job states or with job %zu of %zu",
                            hook_names[c->hook], c->job, g->spec->n_jobs);
    }
    return 0;
}

int jg_policy_on_submit(jg_policy_t *p, const jg_policy_group_t *group,
                        const jg_policy_user_t *user, jg_policy_admission_t *out,
                        jg_error_t *err)
{
    jg_policy_call_t c = { .hook = JG_HOOK_ON_SUBMIT, .group = group, .user = user };
    int rc = check_call(p, &c, false, err);
    if (rc == 0)
        rc = run_hook(p, &c, err);
    *out = c.adm;
    return rc;
}

int jg_policy_place(jg_policy_t *p, const jg_policy_group_t *group,
                    const jg_policy_infra_t *infras, size_t n_infras,
                    jg_policy_placement_t *out, jg_error_t *err)
{
    jg_policy_call_t c = { .hook = JG_HOOK_PLACE, .group = group, .infras = infras,
                           .n_infras = infras ? n_infras : 0 };
    int rc = check_call(p, &c, false, err);
    if (rc == 0) {
        c.pl.job_infra = jg_xcalloc(group->spec->n_jobs, sizeof *c.pl.job_infra);
        rc = run_hook(p, &c, err);
        if (!c.pl.accepted) {
            free(c.pl.job_infra);
            c.pl.job_infra = NULL;
        }
    }
    *out = c.pl;
    return rc;
}

int jg_policy_priority(jg_policy_t *p, const jg_policy_group_t *group,
                       const jg_policy_usage_t *usage, size_t n_usage, double *out,
                       jg_error_t *err)
{
    jg_policy_call_t c = { .hook = JG_HOOK_PRIORITY, .group = group, .usage = usage,
                           .n_usage = usage ? n_usage : 0 };
    int rc = check_call(p, &c, false, err);
    if (rc == 0)
        rc = run_hook(p, &c, err);
    *out = c.prio;
    return rc;
}

int jg_policy_on_node_exit(jg_policy_t *p, const jg_policy_group_t *group, size_t job_index,
                           const jg_policy_exit_t *ev, jg_policy_decision_t *out,
                           jg_error_t *err)
{
    jg_policy_call_t c = { .hook = JG_HOOK_ON_NODE_EXIT, .group = group, .job = job_index,
                           .ev = ev };
    int rc = check_call(p, &c, true, err);
    if (rc == 0 && !ev) {
        jg_policy_builtin(&c);
        rc = jg_errprintf(err, "on_node_exit: called without an event");
    }
    if (rc == 0)
        rc = run_hook(p, &c, err);
    *out = c.dec;
    return rc;
}

int jg_policy_on_job_end(jg_policy_t *p, const jg_policy_group_t *group, size_t job_index,
                         jg_policy_job_end_t *out, jg_error_t *err)
{
    jg_policy_call_t c = { .hook = JG_HOOK_ON_JOB_END, .group = group, .job = job_index };
    int rc = check_call(p, &c, true, err);
    if (rc == 0) {
        c.je.cancel = jg_xcalloc(group->spec->n_jobs, sizeof *c.je.cancel);
        rc = run_hook(p, &c, err);
        if (c.je.n_cancel == 0) {
            free(c.je.cancel);
            c.je.cancel = NULL;
        }
    }
    *out = c.je;
    return rc;
}

void jg_policy_placement_clear(jg_policy_placement_t *pl)
{
    if (!pl)
        return;
    free(pl->job_infra);
    pl->job_infra = NULL;
}

void jg_policy_job_end_clear(jg_policy_job_end_t *je)
{
    if (!je)
        return;
    free(je->cancel);
    je->cancel = NULL;
    je->n_cancel = 0;
}
