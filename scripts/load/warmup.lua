-- wrk script run before each measured validate run (scripts/load/run.sh): validations for a user
-- that does not exist, so that every pooled database connection is open and has prepared the
-- validate path's statements before the clock starts. They are rejected and audited as
-- `unknown_user`, touching no account's counters.
-- Usage: wrk -t 1 -c C -d 2s -s warmup.lua URL -- APP_KEY
function init(args)
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[1] }
end

function request()
  return wrk.format("POST", "/api/v1/validate", headers,
    '{"user":"warmup-no-such-user","code":"000000"}')
end
