-- wrk script for `make bench`: adds spread over many stamps, validates, or a hot row.
--
-- Environment:
--   BENCH_MODE    add | validate | hot
--   BENCH_KEY     the API key (sent as `Authorization: APIKey …`)
--   BENCH_FIRST   first stampIdx of the seeded range
--   BENCH_COUNT   how many stamps the range holds
--   BENCH_HOT     the hot stamp (mode hot: add and remove alternate on it)
--   BENCH_RUN     a run id, so that every Idempotency-Key is new
--   BENCH_SEED    seed for the stamp choice
--
-- Every write carries a unique Idempotency-Key (run, thread, counter). done()
-- prints one line `BENCH_RESULT {json}` that bench/run.py parses: requests,
-- duration, socket errors, non-2xx, refusals (HTTP 200 with a non-zero code)
-- and latency percentiles in microseconds.

local mode = os.getenv("BENCH_MODE") or "add"
local key = os.getenv("BENCH_KEY") or ""
local first = tonumber(os.getenv("BENCH_FIRST") or "1")
local count = tonumber(os.getenv("BENCH_COUNT") or "1")
local hot = tonumber(os.getenv("BENCH_HOT") or "1")
local run = os.getenv("BENCH_RUN") or "run"
local seed = tonumber(os.getenv("BENCH_SEED") or "1")

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_no", #threads)
end

local counter = 0
local auth = "APIKey " .. key

function init(args)
   math.randomseed(seed * 1000 + (thread_no or 0))
   refusals = 0
   ok = 0
end

local function write(path, stamp)
   counter = counter + 1
   local headers = {
      ["Authorization"] = auth,
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = run .. "-" .. (thread_no or 0) .. "-" .. counter,
   }
   return wrk.format("PUT", path, headers, '{"stampIdx":' .. stamp .. '}')
end

function request()
   if mode == "validate" then
      local stamp = math.random(first, first + count - 1)
      return wrk.format("GET", "/api/stamp/v1/validate?stampIdx=" .. stamp,
                        { ["Authorization"] = auth }, nil)
   elseif mode == "hot" then
      if counter % 2 == 0 then
         return write("/api/stamp/v1/add", hot)
      end
      return write("/api/stamp/v1/remove", hot)
   end
   return write("/api/stamp/v1/add", math.random(first, first + count - 1))
end

function response(status, headers, body)
   if status == 200 and string.sub(body, 1, 9) == '{"code":0' then
      ok = ok + 1
   elseif status == 200 then
      refusals = refusals + 1
   end
end

function done(summary, latency, requests)
   local refused, succeeded = 0, 0
   for _, thread in ipairs(threads) do
      refused = refused + thread:get("refusals")
      succeeded = succeeded + thread:get("ok")
   end
   -- The latency distribution as percentiles 1..99, 99.5, 99.9 and the maximum, so
   -- that run.py can merge several rounds into one distribution.
   local points = {}
   for p = 1, 99 do points[#points + 1] = latency:percentile(p) end
   points[#points + 1] = latency:percentile(99.5)
   points[#points + 1] = latency:percentile(99.9)
   points[#points + 1] = latency.max
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"socket_errors":%d,"non_2xx":%d,' ..
      '"ok":%d,"refusals":%d,"percentiles_us":[%s]}\n',
      summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
      e.status, succeeded, refused, table.concat(points, ",")))
end
