-- wrk: GET / built per request by a Lua function, exactly as introspect.lua
-- builds its requests, so both runs pay the load generator the same cost.
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/", { ["X-Request"] = tostring(counter) })
end
