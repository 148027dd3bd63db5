-- wrk: a page as a browser asks for it (Accept: text/html, the session cookie of LOGIN_FILE's token).
local file = io.open(os.getenv("LOGIN_FILE"))
local login = file:read("*l")
file:close()
wrk.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
wrk.headers["Cookie"] = "kbase_session=" .. login
