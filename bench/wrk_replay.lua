-- wrk script for the benchmarks: replays pre-generated (and pre-signed) POST requests, one per line of a file
-- ("<X-Twilio-Signature> TAB <form-encoded body>"), each wrk thread taking every Nth line so that no two
-- requests share a MessageSid. done() writes the run's numbers as JSON for bench/_wrk.py to read.
--
-- Ending: wrk drops the requests still in flight when its own --duration runs out, though the server may still
-- commit them. So each thread stops *sending* after BENCH_SECONDS, waits for its last responses, stops itself and
-- leaves a file "<BENCH_RESULT>.stopped-<thread>", on which bench/_wrk.py ends wrk with SIGINT (wrk's --duration
-- is only the upper bound). Rates are counted over the BENCH_SECONDS window.
--
-- Environment (the done() phase runs in its own Lua state, which sees no script arguments):
--   BENCH_REQUESTS  the request file            BENCH_THREADS  wrk's -t, to split the file between threads
--   BENCH_SECONDS   the sending window          BENCH_RESULT   where done() writes its JSON
--   BENCH_CYCLE     "1": start the share over when used up; otherwise stop sending (reported as exhausted)

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local NEVER_MS = 3600 * 1000
local timespec = ffi.new("bench_timespec")

local function now()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
   return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

function init(args)
   local count = tonumber(os.getenv("BENCH_THREADS"))
   cycle = os.getenv("BENCH_CYCLE") == "1"
   pool = {}
   local line_number = 0
   for line in io.lines(os.getenv("BENCH_REQUESTS")) do
      if line_number % count == thread_index then
         local tab = string.find(line, "\t", 1, true)
         local headers = {
            ["Content-Type"] = "application/x-www-form-urlencoded",
            ["X-Twilio-Signature"] = string.sub(line, 1, tab - 1),
         }
         pool[#pool + 1] = wrk.format("POST", nil, headers, string.sub(line, tab + 1))
      end
      line_number = line_number + 1
   end
   -- wrk calls request() once on thread 0 before the run, only to count the requests in the string it returns.
   verifying = thread_index == 0
   sent = 0
   responses = 0
   in_window = 0
   exhausted = 0
   closed = false
   stopped = false
   statuses = {}
   stop_at = now() + tonumber(os.getenv("BENCH_SECONDS"))
end

local function stop_thread()
   if not stopped then
      stopped = true
      assert(io.open(os.getenv("BENCH_RESULT") .. ".stopped-" .. thread_index, "w")):close()
      wrk.thread:stop()
   end
end

-- Called before each request: 0 sends at once; after the window (or the share) no request is sent again.
function delay()
   if not closed and now() >= stop_at then
      closed = true
   end
   if not closed and not cycle and sent >= #pool then
      closed = true
      exhausted = 1
   end
   if closed then
      if responses >= sent then
         stop_thread()
      end
      return NEVER_MS
   end
   return 0
end

function request()
   if verifying then
      verifying = false
      return pool[1]
   end
   local next_request = pool[(sent % #pool) + 1]
   sent = sent + 1
   return next_request
end

function response(status, headers, body)
   responses = responses + 1
   if now() < stop_at then
      in_window = in_window + 1
   end
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
   if closed and responses >= sent then
      stop_thread()
   end
end

local function count(n)
   return string.format("%.0f", n)
end

function done(summary, latency, requests)
   local out = {}
   local function add(text)
      out[#out + 1] = text
   end
   add('{"duration_us": ' .. count(summary.duration))
   add(', "completed": ' .. count(summary.requests))
   local e = summary.errors
   add(string.format(', "errors": {"connect": %s, "read": %s, "write": %s, "status": %s, "timeout": %s}',
      count(e.connect), count(e.read), count(e.write), count(e.status), count(e.timeout)))
   add(string.format(
      ', "latency_us": {"p50": %.1f, "p90": %.1f, "p99": %.1f, "p99.9": %.1f, "max": %.1f, "mean": %.1f}',
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
      latency.max, latency.mean))
   add(', "threads": [')
   for index, thread in ipairs(threads) do
      if index > 1 then
         add(", ")
      end
      local parts = {}
      for status, n in pairs(thread:get("statuses")) do
         parts[#parts + 1] = string.format('"%s": %s', status, count(n))
      end
      add(string.format(
         '{"index": %d, "sent": %s, "responses": %s, "in_window": %s, "exhausted": %s, "statuses": {%s}}',
         thread:get("thread_index"), count(thread:get("sent")), count(thread:get("responses")),
         count(thread:get("in_window")), thread:get("exhausted") == 1 and "true" or "false",
         table.concat(parts, ", ")))
   end
   add("]}\n")
   local file = assert(io.open(os.getenv("BENCH_RESULT"), "w"))
   file:write(table.concat(out))
   file:close()
end
