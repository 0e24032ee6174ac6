-- Argo CD health of a StreamJob (sluice.dev/v1alpha1). First match wins:
--   1. the operator has not observed metadata.generation yet -> Progressing
--   2. a Stalled condition is True                             -> Degraded
--   3. phase Failed or RolledBack                              -> Degraded
--   4. phase Suspended                                         -> Suspended
--   5. phase Stable or Finished                                -> Healthy
--   6. any other phase                                         -> Progressing
-- Argo CD runs it under gopher-lua (Lua 5.1) with only the base and table
-- libraries: no string.*, so text is joined with "..". Numbers are floats and
-- JSON null is nil.

local function text(v)
  if type(v) == "string" and v ~= "" then
    return v
  end
  return nil
end

-- "Running (job RUNNING): <status.error>", each part only when asked for and set.
local function describe(status, phase, show_job_state, show_error)
  local msg = phase
  local job_state = text(status.jobState)
  if show_job_state and job_state ~= nil then
    msg = msg .. " (job " .. job_state .. ")"
  end
  local err = text(status.error)
  if show_error and err ~= nil then
    msg = msg .. ": " .. err
  end
  return msg
end

local hs = {}
local status = obj.status
local generation = nil
if type(obj.metadata) == "table" and type(obj.metadata.generation) == "number" then
  generation = obj.metadata.generation
end

-- Rule 1. Without metadata.generation there is nothing to wait for.
if type(status) ~= "table" then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the operator to observe generation " .. generation
  else
    hs.message = "Waiting for the operator"
  end
  return hs
end
if generation ~= nil then
  local observed = status.observedGeneration
  if type(observed) ~= "number" then
    hs.status = "Progressing"
    hs.message = "Waiting for the operator to observe generation " .. generation
    return hs
  end
  if observed ~= generation then
    hs.status = "Progressing"
    hs.message = "Waiting for the operator to observe generation " .. generation .. " (observed " .. observed .. ")"
    return hs
  end
end

-- Rule 2. The operator sets Stalled for an invalid spec (the job keeps running
-- its last valid spec), a failed job and a rolled-back upgrade.
if type(status.conditions) == "table" then
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == "Stalled" and c.status == "True" then
      hs.status = "Degraded"
      hs.message = text(c.message) or text(c.reason) or text(status.error) or "Stalled"
      return hs
    end
  end
end

-- The CRD defaults a missing phase to Created.
local phase = text(status.phase) or "Created"

-- Rule 3.
if phase == "Failed" or phase == "RolledBack" then
  hs.status = "Degraded"
  hs.message = describe(status, phase, false, true)
  return hs
end

-- Rule 4.
if phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = "Suspended"
  if type(status.lastSavepoint) == "table" and text(status.lastSavepoint.location) ~= nil then
    hs.message = "Suspended at savepoint " .. status.lastSavepoint.location
  end
  return hs
end

-- Rule 5. status.error is left out: on a healthy job it is one the job got past.
if phase == "Stable" or phase == "Finished" then
  hs.status = "Healthy"
  hs.message = describe(status, phase, true, false)
  return hs
end

-- Rule 6: Created, Deploying, Running, Upgrading, RollingBack, Deleting, or a
-- phase newer than this script.
hs.status = "Progressing"
hs.message = describe(status, phase, true, true)
return hs
