-- wrk: POST /api/V2/certs/ssh (a new user certificate per request) with one Login token.
local file = io.open(os.getenv("LOGIN_FILE"))
local login = file:read("*l")
file:close()
wrk.method = "POST"
wrk.body = '{"public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "ttl": 3600}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = login
