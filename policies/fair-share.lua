-- fair-share.lua - admit the groups of the users who use least first.
--
-- The default admits in submit order, so one user who queues a hundred
-- groups holds everyone else back.  Here a pending group's key is its
-- owner's current consumption (cpus + nodes now in use); the smallest key is
-- admitted first and submit order breaks ties.  Placement, failure handling
-- and recovery stay the default's.  The queue's order is the daemon's
-- configured policy's alone (a group's own priority() is never asked), so
-- this takes effect as `default_policy: fair-share` in config.yaml.

-- One unit of usage outweighs any difference in submit time (seconds).
local USAGE_WEIGHT = 1e10

local function priority(group, usage)
  local u = usage[group.user]
  local share = 0
  if u ~= nil then
    share = u.cpus + u.nodes
  end
  return share * USAGE_WEIGHT + group.submitted
end

return {
  priority = priority,
}
