-- wrk script for the OpenID token endpoint benchmark (scripts/load/oidc_token.sh,
-- docs/performance.md "OpenID provider"): POST /oidc/token redeeming authorization codes, each
-- code once (thread i of T takes codes i, i+T, ...), with the client's Basic credentials. The
-- run lasts its -d; there must be more codes than it redeems in that time: a request after a
-- thread's codes are used up reuses its last code and counts as "other" (the script refuses a
-- run with more than a handful of those).
--
-- Usage: wrk -t T -c C -d D --latency -s oidc_token.lua URL -- BODIES_FILE BASIC T
local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  local threads_n = tonumber(args[3])
  local i = 0
  for line in io.lines(args[1]) do
    if i % threads_n == id then
      bodies[#bodies + 1] = line
    end
    i = i + 1
  end
  basic = args[2]
  next_body = 1
  redeemed, other = 0, 0
  codes_n = #bodies
end

function request()
  local b = bodies[next_body] or bodies[#bodies]
  next_body = next_body + 1
  return wrk.format("POST", "/oidc/token", {
    ["Authorization"] = "Basic " .. basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, b)
end

function response(status)
  if status == 200 then
    redeemed = redeemed + 1
  else
    other = other + 1
  end
end

function done(summary, latency, _)
  local r, o, n = 0, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("redeemed")
    o = o + t:get("other")
    n = n + t:get("codes_n")
  end
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"run":"oidc_token","driver":"wrk","codes":%d,"requests":%d,"redeemed":%d,"other":%d,' ..
    '"errors":%d,"seconds":%.3f,"redeemed_per_second":%d,"p50_ms":%.2f,"p99_ms":%.2f}\n',
    n, r + o, r, o, errors, secs, math.floor(r / secs + 0.5),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
