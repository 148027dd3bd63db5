-- wrk: POST /api/V2/hosts/join with a static token. HOST_MODE=new (default):
-- every request is a new host id (a binding and a certificate); HOST_MODE=renew:
-- every request renews the certificate of one host already joined with this key.
local key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
local token = os.getenv("JOIN_TOKEN")
local renew = os.getenv("HOST_MODE") == "renew"
local threads = 0
local n = 0
local thread_id = 0

function setup(thread)
    threads = threads + 1
    thread:set("thread_id", threads)
end

function request()
    n = n + 1
    local host = "bench-host"
    if not renew then
        host = string.format("bench-%d-%d-%d", os.time(), thread_id, n)
    end
    local body = '{"token": "' .. token .. '", "host_id": "' .. host .. '", "public_key": "' .. key .. '"}'
    return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
