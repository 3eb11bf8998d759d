-- default.lua - jgsched's default policy: SkyPilot's semantics, plus a real
-- SAME_INFRA (docs/policies.md describes every table and decision).
--
-- Every other policy falls back to these hooks for whatever it leaves out,
-- and can delegate to them explicitly through jg.default.<hook>.  When a
-- policy's hook fails, the scheduler records the error and uses the decision
-- this file makes for the same input.

-- Restarts after preemption or a lost node (not charged to
-- max_restarts_on_errors).  SkyPilot recovers without a limit; a node that
-- keeps vanishing is more likely a broken node or infra than bad luck.
local MAX_RECOVERIES = 10
-- Restarts for an exit code listed in recover_on_exit_codes are free, as in
-- SkyPilot; this only stops a job that exits that way forever.
local MAX_ATTEMPTS = 100

-- on_submit: accept every group as it is.
local function on_submit(group, user)
  return true
end

-- place: SAME_INFRA.  Every job goes to one infra: the one the jobs pin (all
-- pins must agree), else the first offered infra that can hold the group.
local function place(group, infras)
  if group.placement ~= "SAME_INFRA" then
    return nil, "placement " .. tostring(group.placement) .. " is not supported"
  end
  local want, want_job
  for _, job in ipairs(group.jobs) do
    if job.infra then
      if want == nil then
        want, want_job = job.infra, job.name
      else
        local meet = jg.infra_meet(want, job.infra)
        if meet == nil then
          return nil, string.format(
            "job %s pins %s, job %s pins %s: placement SAME_INFRA needs one infra for all jobs",
            want_job, want, job.name, job.infra)
        end
        if meet ~= want then want, want_job = meet, job.name end
      end
    end
  end
  local offered, why = {}, {}
  local chosen
  for _, infra in ipairs(infras) do
    offered[#offered + 1] = infra.name
    if want == nil or jg.infra_matches(want, infra.name) then
      if infra.fits then
        chosen = infra.name
        break
      end
      why[#why + 1] = infra.name .. ": " .. (infra.reason or "the group does not fit")
    end
  end
  if chosen == nil then
    if want ~= nil and #why == 0 then
      return nil, string.format("job %s pins %s, which is not available here (infras: %s)",
                                want_job, want, table.concat(offered, ", "))
    end
    if #why == 0 then
      return nil, "no infra is available"
    end
    return nil, "no infra can hold every job of the group (" .. table.concat(why, "; ") .. ")"
  end
  local placement = {}
  for _, job in ipairs(group.jobs) do
    placement[job.name] = chosen
  end
  return placement
end

-- priority: FIFO.  Smaller keys are admitted first; ties go to the lower id.
local function priority(group, usage)
  return group.submitted
end

-- on_node_exit: SkyPilot's job_recovery.  A failed job does not stop its
-- siblings: whatever is not restarted is "continue".
local function on_node_exit(group, job, event)
  if not jg.failed(event) then
    return "continue"
  end
  local where = string.format("%s rank %d", job.name, event.rank)
  local code = tostring(event.exit_code)
  if event.reason == "preempted" or event.reason == "node_lost" then
    if event.recoveries < MAX_RECOVERIES then
      return { action = "restart_job", count = "recoveries",
               reason = string.format("%s: %s, recovery %d of %d", where, event.reason,
                                      event.recoveries + 1, MAX_RECOVERIES) }
    end
    return { action = "continue",
             reason = string.format("%s: %s after %d recoveries; giving up", where,
                                    event.reason, event.recoveries) }
  end
  if event.reason == "setup_failed" then
    return { action = "continue",
             reason = string.format("%s: setup failed (exit %s); setup is not retried",
                                    where, code) }
  end
  local r = job.job_recovery
  if r == nil then
    return { action = "continue",
             reason = string.format("%s: exit %s, no job_recovery", where, code) }
  end
  if jg.contains(r.recover_on_exit_codes, event.exit_code) then
    if event.attempt < MAX_ATTEMPTS then
      return { action = "restart_job", count = "none",
               reason = string.format("%s: exit %s is in recover_on_exit_codes", where, code) }
    end
    return { action = "continue",
             reason = string.format("%s: exit %s after %d attempts; giving up", where, code,
                                    event.attempt) }
  end
  if event.restarts < r.max_restarts_on_errors then
    return { action = "restart_job", count = "restarts",
             reason = string.format("%s: exit %s, restart %d of max_restarts_on_errors %d",
                                    where, code, event.restarts + 1, r.max_restarts_on_errors) }
  end
  return { action = "continue",
           reason = string.format("%s: exit %s, max_restarts_on_errors (%d) reached", where,
                                  code, r.max_restarts_on_errors) }
end

-- on_job_end: primary_tasks.  Once every primary job has ended, the
-- auxiliary jobs still running are cancelled: after their termination_delay
-- when every primary succeeded, at once when one did not.
local function on_job_end(group, job)
  local all_succeeded = true
  for _, j in ipairs(group.jobs) do
    if j.primary then
      if not jg.is_terminal(j.state) then
        return nil
      end
      if j.state ~= "SUCCEEDED" then all_succeeded = false end
    end
  end
  local cancel = {}
  for _, j in ipairs(group.jobs) do
    if not j.primary and not jg.is_terminal(j.state) then
      cancel[#cancel + 1] = { job = j.name, delay = all_succeeded and j.termination_delay or 0 }
    end
  end
  if #cancel == 0 then
    return nil
  end
  return { cancel = cancel,
           reason = all_succeeded and "every primary job succeeded"
                    or "every primary job has ended and one did not succeed" }
end

return {
  on_submit = on_submit,
  place = place,
  priority = priority,
  on_node_exit = on_node_exit,
  on_job_end = on_job_end,
}
