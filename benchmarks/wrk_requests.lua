-- wrk script of benchmarks/message_cpu.py: every request unique, one conversation per thread.
--
--   wrk -t16 -c16 -s benchmarks/wrk_requests.lua URL -- BODIES FIRST_ID SENT_FILE [PAUSE_MS]
--
-- BODIES: a file of request bodies, one a line, in which {ID} becomes a number unique to the
-- request (an update_id, an activity id) and {CONV} the thread's conversation (1000 + thread
-- number). Run with as many threads as connections, so that each conversation sends its
-- messages one after another on one connection, in order. FIRST_ID: where this run's ids
-- start. SENT_FILE: where done() writes "conversation<TAB>monotonic send time" per request,
-- in order, to match with the replies' arrivals; "-" for none. PAUSE_MS: how long each
-- connection waits after an answer before its next request (none by default: as fast as
-- the server answers). done() prints one line,
-- "wrk-summary {json}", with wrk's figures (latencies in microseconds).

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local bodies, first, record, clock, n = {}, 0, false, nil, 0
sent, sent_file = {}, "-" -- globals: done() reads them with thread:get

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  first = tonumber(args[2]) + tid * 10000000
  sent_file = args[3]
  record = sent_file ~= "-"
  local pause = tonumber(args[4] or "0")
  if pause > 0 then
    -- wrk looks for delay() after init: defined only when asked for, it costs nothing else
    delay = function()
      return pause
    end
  end
  clock = ffi.new("bench_timespec")
end

function request()
  n = n + 1
  local body = bodies[(n - 1) % #bodies + 1]
  body = body:gsub("{ID}", string.format("%d", first + n))
  body = body:gsub("{CONV}", string.format("%d", 1000 + tid))
  if record then
    ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
    sent[n] = tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
  end
  return wrk.format("POST", nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'wrk-summary {"requests": %d, "duration_us": %d, "errors": %d, "status_errors": %d, '
      .. '"p50": %d, "p95": %d, "p99": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
  local path = threads[1]:get("sent_file")
  if path == "-" then
    return
  end
  local out = assert(io.open(path, "w"))
  for _, thread in ipairs(threads) do
    local conversation = 1000 + thread:get("tid")
    for _, at in ipairs(thread:get("sent")) do
      out:write(string.format("%d\t%.6f\n", conversation, at))
    end
  end
  out:close()
end
