-- wrk: GET /api/V2/token with the seeded tokens, round-robin.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  tokens[#tokens + 1] = line
end
local counter = math.random(#tokens)
request = function()
  counter = counter + 1
  return wrk.format("GET", "/api/V2/token", { ["Authorization"] = tokens[(counter % #tokens) + 1] })
end
