-- wrk script for the forward-auth benchmark (scripts/load/forward_auth.sh, docs/performance.md
-- "Forward authentication"): nginx's sub-request (GET /api/v1/forward-auth with X-Original-URL),
-- each request carrying the single-sign-on cookie of one of the sessions in TOKENS_FILE, round
-- robin, so that every request is an allowed check (200).
--
-- Usage: wrk -t T -c C -d D --latency -s forward_auth.lua URL -- TOKENS_FILE C
local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
  connections_n = tonumber(args[2])
  tokens_n = #tokens
  -- Threads start at different tokens.
  next_token = (id * 7919) % #tokens + 1
  allowed, other = 0, 0
end

function request()
  local t = tokens[next_token]
  next_token = next_token % #tokens + 1
  return wrk.format("GET", "/api/v1/forward-auth", {
    ["X-Original-URL"] = "https://app.bench.test/dashboard",
    ["X-Original-Method"] = "GET",
    ["Cookie"] = "mamori_sso=" .. t,
  })
end

function response(status)
  if status == 200 then
    allowed = allowed + 1
  else
    other = other + 1
  end
end

function done(summary, latency, _)
  local a, o = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("allowed")
    o = o + t:get("other")
  end
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"run":"forward_auth","driver":"wrk","sessions":%d,"concurrency":%d,"requests":%d,"allowed":%d,"other":%d,' ..
    '"errors":%d,"seconds":%.3f,"allowed_per_second":%d,"p50_ms":%.2f,"p99_ms":%.2f}\n',
    threads[1]:get("tokens_n"), threads[1]:get("connections_n"), a + o, a, o, errors, secs,
    math.floor(a / secs + 0.5), latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
