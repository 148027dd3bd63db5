-- wrk: PUT /api/V2/me (a new display name per request), every connection as
-- one and the same user: the contention part's load on a single account.
local file = io.open(os.getenv("LOGIN_FILE"))
local login = file:read("*l")
file:close()
local count = 0
request = function()
    count = count + 1
    local body = '{"display": "Busy ' .. count .. '"}'
    return wrk.format("PUT", "/api/V2/me", {["Authorization"] = login, ["Content-Type"] = "application/json"}, body)
end
