-- prelude.lua - the `jg` helper table every policy sees (docs/policies.md).
--
-- Loaded once per policy state, before default.lua, in its own environment;
-- each script then gets its own copy of the table, so a policy that replaces
-- a helper changes only its own view.  Helpers are plain functions over the
-- snapshot tables the hooks receive; none of them keeps state.

local jg = {}

-- Terminal states (nothing changes after them) and the failed ones.
local TERMINAL = {
  SUCCEEDED = true, FAILED = true, CANCELLED = true,
  FAILED_SETUP = true, FAILED_NO_RESOURCE = true, FAILED_PRECHECKS = true,
}
local FAILURE = {
  FAILED = true, FAILED_SETUP = true, FAILED_NO_RESOURCE = true, FAILED_PRECHECKS = true,
}

function jg.is_terminal(state) return TERMINAL[state] == true end
function jg.is_failure(state) return FAILURE[state] == true end

-- True if value is an element of the array list (nil list: false).
function jg.contains(list, value)
  if list == nil then return false end
  for _, v in ipairs(list) do
    if v == value then return true end
  end
  return false
end

-- The job table of group named name, or nil.
function jg.job(group, name)
  for _, job in ipairs(group.jobs) do
    if job.name == name then return job end
  end
  return nil
end

-- The infra family: "kubernetes/ctx" -> "kubernetes".
function jg.infra_kind(name)
  return (name:match("^([^/]+)")) or name
end

-- Does the pinned infra `want` ("kubernetes", "kubernetes/ctx", "local")
-- accept the offered infra `name`?  A family accepts each of its contexts.
function jg.infra_matches(want, name)
  if want == name then return true end
  return not want:find("/", 1, true) and jg.infra_kind(name) == want
end

-- Of two pins, the more specific one if they are compatible, else nil.
function jg.infra_meet(a, b)
  if a == b then return a end
  if jg.infra_matches(a, b) then return b end
  if jg.infra_matches(b, a) then return a end
  return nil
end

-- "H100:1" for a job's accelerators, or nil when it asks for none.
function jg.accelerators(job)
  if job.accelerators == nil then return nil end
  local name, count = next(job.accelerators)
  if name == nil then return nil end
  return name .. ":" .. tostring(count)
end

-- Is the exit in event a failure (anything but a clean exit 0)?
function jg.failed(event)
  return not (event.reason == "exited" and event.exit_code == 0)
end

-- A decision table: jg.decide("restart_job", "why", {delay = 5}).
function jg.decide(action, reason, extra)
  local d = { action = action, reason = reason }
  if extra then
    for k, v in pairs(extra) do d[k] = v end
  end
  return d
end

-- print with string.format.
function jg.log(fmt, ...)
  print(string.format(fmt, ...))
end

return jg
