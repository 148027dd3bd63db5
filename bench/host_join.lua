-- wrk: POST /api/V2/hosts/join with a static token (a new host certificate per request).
wrk.method = "POST"
wrk.body = '{"token": "' .. os.getenv("JOIN_TOKEN") .. '", "host_id": "bench-host", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}'
wrk.headers["Content-Type"] = "application/json"
