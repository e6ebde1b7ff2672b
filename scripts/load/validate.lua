-- wrk script for the validate benchmark (scripts/load/run.sh, docs/performance.md "## Server").
--
-- Usage: wrk -t T -c C -d D --latency -s validate.lua URL -- BODIES_FILE APP_KEY T USERS C
--
-- BODIES_FILE holds one JSON request body per line, written by `load bodies`: every user's
-- previous-step code, then every user's current-step code, then every user's next-step code, so
-- that each line is a code the server has not seen and will accept exactly once. Line i belongs
-- to user (i mod USERS); thread t sends the lines of the users u with (u mod THREADS) = t, in
-- file order, so one user's codes are sent in increasing step order by one thread, thousands of
-- requests apart. A thread stops when its lines run out and are answered, so no replayed code is
-- ever sent, and the run's length is measured from the first request to the last answer (wrk's
-- own duration would include the idle tail).
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } mamori_timespec;
  int clock_gettime(int clk_id, mamori_timespec *tp);
]]
local function now_us()
  local ts = ffi.new("mamori_timespec")
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local file, key = args[1], args[2]
  local n, users = tonumber(args[3]), tonumber(args[4])
  users_n, connections_n = users, tonumber(args[5])
  bodies = {}
  local i = 0
  for line in io.lines(file) do
    if (i % users) % n == id then
      bodies[#bodies + 1] = line
    end
    i = i + 1
  end
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key }
  next_body, sent, accepted, rejected, errors = 1, 0, 0, 0, 0
  inspected = false
  first_us, last_us = 0, 0
end

function request()
  -- wrk calls request() once on the first thread before the run, only to inspect the request it
  -- returns; that call must not use up a code.
  if id == 0 and not inspected then
    inspected = true
    return wrk.format("POST", "/api/v1/validate", headers, bodies[1])
  end
  local body = bodies[next_body]
  if body == nil then
    -- Out of codes. Stop once every sent code has its answer; until then keep this connection
    -- busy with a probe the server refuses at once (GET on a POST route: 405, no body) and that
    -- response() does not count.
    if accepted + rejected + errors >= sent then
      wrk.thread:stop()
    end
    return wrk.format("GET", "/api/v1/validate")
  end
  if first_us == 0 then
    first_us = now_us()
  end
  next_body = next_body + 1
  sent = sent + 1
  return wrk.format("POST", "/api/v1/validate", headers, body)
end

function response(status, _, body)
  if status == 405 then
    return
  end
  last_us = now_us()
  if status == 200 and string.find(body, '"result":"accept"', 1, true) then
    accepted = accepted + 1
  elseif status == 200 or status == 401 then
    rejected = rejected + 1
  else
    errors = errors + 1
  end
end

function done(summary, latency, _)
  -- done() runs in the setup environment, which never saw init()'s arguments: ask a thread.
  local users, connections = threads[1]:get("users_n"), threads[1]:get("connections_n")
  local a, r, e, first, last = 0, 0, 0, nil, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted")
    r = r + t:get("rejected")
    e = e + t:get("errors")
    local f = t:get("first_us")
    if f > 0 and (first == nil or f < first) then first = f end
    if t:get("last_us") > last then last = t:get("last_us") end
  end
  local secs = (last - (first or last)) / 1e6
  if secs <= 0 then secs = summary.duration / 1e6 end
  local total = a + r + e
  io.write(string.format(
    '{"run":"validate","driver":"wrk","users":%d,"concurrency":%d,"requests":%d,"accepted":%d,"rejected":%d,"errors":%d,' ..
    '"seconds":%.3f,"per_second":%d,"accepted_per_second":%d,"p50_ms":%.2f,"p99_ms":%.2f}\n',
    users, connections, total, a, r, e + summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, secs, math.floor(total / secs + 0.5), math.floor(a / secs + 0.5),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
