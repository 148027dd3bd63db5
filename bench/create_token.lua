-- wrk: POST /api/V2/token (a new Agent token per request) with one Login token.
local file = io.open(os.getenv("LOGIN_FILE"))
local login = file:read("*l")
file:close()
wrk.method = "POST"
wrk.body = '{"name": "bench"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = login
