-- Argo CD health of a StreamSavepoint (sluice.dev/v1alpha1):
--   no status            -> Progressing
--   Completed            -> Healthy, with the location
--   Failed               -> Degraded, with the error
--   Pending, InProgress  -> Progressing, with the attempts so far and the last error
-- Argo CD runs it under gopher-lua (Lua 5.1) with only the base and table
-- libraries: no string.*, so text is joined with "..". Numbers are floats and
-- JSON null is nil.

local function text(v)
  if type(v) == "string" and v ~= "" then
    return v
  end
  return nil
end

local hs = {}
local status = obj.status

if type(status) ~= "table" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end

-- The CRD defaults a missing phase to Pending.
local phase = text(status.phase) or "Pending"

if phase == "Completed" then
  hs.status = "Healthy"
  hs.message = "Completed"
  if text(status.location) ~= nil then
    hs.message = "Completed: " .. status.location
  end
  return hs
end

if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "Failed"
  if text(status.error) ~= nil then
    hs.message = "Failed: " .. status.error
  end
  return hs
end

-- Pending, InProgress, or a phase newer than this script.
hs.status = "Progressing"
hs.message = phase
if type(status.attempts) == "number" and status.attempts > 0 then
  hs.message = hs.message .. " (attempts: " .. status.attempts .. ")"
end
if text(status.error) ~= nil then
  hs.message = hs.message .. ": " .. status.error
end
return hs
