-- wrk: POST /api/V2/hosts/join with a static token. HOST_MODE=new (default):
-- every request is a new host id (a binding and a certificate); HOST_MODE=renew:
-- every request renews the certificate of one host already joined with this key
-- (a fixed body, as the other scripts send). Host ids are inside the cluster
-- bench.internal (the server's cluster_name in bench/run.sh).
local key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
local token = os.getenv("JOIN_TOKEN")
local function body(host)
    return '{"token": "' .. token .. '", "host_id": "' .. host .. '", "public_key": "' .. key .. '"}'
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

if os.getenv("HOST_MODE") == "renew" then
    wrk.body = body("bench-host.bench.internal")
else
    local threads = 0
    local n = 0
    thread_id = 0

    function setup(thread)
        threads = threads + 1
        thread:set("thread_id", threads)
    end

    function request()
        n = n + 1
        return wrk.format(nil, nil, nil, body(string.format("bench-%d-%d-%d.bench.internal", os.time(), thread_id, n)))
    end
end
