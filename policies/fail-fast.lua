-- fail-fast.lua - the first failure ends the whole group as FAILED.
--
-- SkyPilot's default lets the siblings of a failed job run on; a tightly
-- coupled group (a trainer and its parameter servers, say) wants the
-- opposite: the first node that fails for good takes every other node down,
-- so nothing keeps running for a result that can no longer be produced.
-- job_recovery still applies: a failure default.lua would restart is
-- restarted; only what it would let stand ("continue") fails the group.

local function on_node_exit(group, job, event)
  local d = jg.default.on_node_exit(group, job, event)
  local action = type(d) == "table" and d.action or d
  if action ~= "continue" or not jg.failed(event) then
    return d
  end
  local what
  if event.reason == "exited" or event.reason == "setup_failed" then
    what = string.format("%s (exit %s)", event.reason, tostring(event.exit_code))
  else
    what = event.reason
  end
  return { action = "fail_group",
           reason = string.format("fail-fast: %s rank %d %s", job.name, event.rank, what) }
end

return {
  on_node_exit = on_node_exit,
}
