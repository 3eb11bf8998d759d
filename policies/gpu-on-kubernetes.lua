-- gpu-on-kubernetes.lua - groups that ask for accelerators go to kubernetes.
--
-- A site whose GPUs live in a Kubernetes cluster wants every group with an
-- accelerator job placed there, and a clear refusal when that is impossible,
-- rather than a launch on `local` that can never get its GPU.  SAME_INFRA
-- still holds: the whole group goes to the one kubernetes infra.  Groups
-- without accelerators are placed as default.lua places them.

local function place(group, infras)
  local gpu_job, pinned_elsewhere
  for _, job in ipairs(group.jobs) do
    if job.accelerators ~= nil and gpu_job == nil then
      gpu_job = job
    end
    if job.infra ~= nil and jg.infra_kind(job.infra) ~= "kubernetes" then
      pinned_elsewhere = pinned_elsewhere or job
    end
  end
  if gpu_job == nil then
    return jg.default.place(group, infras)
  end
  local asks = string.format("job %s asks for %s", gpu_job.name, jg.accelerators(gpu_job))
  if pinned_elsewhere ~= nil then
    return nil, string.format("%s, which runs on kubernetes only, but job %s pins %s "
                              .. "(SAME_INFRA keeps the group on one infra)",
                              asks, pinned_elsewhere.name, pinned_elsewhere.infra)
  end
  local kube = {}
  for _, infra in ipairs(infras) do
    if jg.infra_kind(infra.name) == "kubernetes" then
      kube[#kube + 1] = infra
    end
  end
  if #kube == 0 then
    return nil, asks .. ", which runs on kubernetes only, and no kubernetes infra is available"
  end
  local placement, why = jg.default.place(group, kube)
  if placement == nil then
    return nil, asks .. ": " .. why
  end
  return placement
end

return {
  place = place,
}
