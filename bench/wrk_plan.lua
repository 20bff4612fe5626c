-- Replays a request plan written by bench/api.py under wrk; not used anywhere else.
--
--   wrk -t2 -c16 -d20s -s bench/wrk_plan.lua URL -- PLAN TOKEN IDEM TAG THREADS
--
-- PLAN: one request a line, "METHOD<TAB>PATH<TAB>BODY" (BODY empty for a GET). Each wrk thread
-- starts at its own offset and walks the plan round robin, so the connections spread over many
-- citizens and entries. TOKEN: the bearer token, "-" for none (baseline routes). IDEM: "idem"
-- sends a unique Idempotency-Key on every POST. TAG: unique per run, so keys never repeat across
-- runs against the same database. "{{n}}" in a body becomes the same unique value (batch items
-- get fresh client_item_ids). done() prints one JSON line that bench/api.py parses.

function setup(thread)
   -- Runs in wrk's main state; thread:set makes thread_number a global of that thread's state.
   threads_started = (threads_started or 0) + 1
   thread:set("thread_number", threads_started)
end

function init(args)
   plan = {}
   for line in io.lines(args[1]) do
      local method, path, body = line:match("^(%u+)\t([^\t]+)\t(.*)$")
      if method then
         plan[#plan + 1] = { method = method, path = path, body = body }
      end
   end
   assert(#plan > 0, "empty plan " .. args[1])
   headers = { ["Accept-Encoding"] = "gzip" }
   if args[2] ~= "-" then
      headers["Authorization"] = "Bearer " .. args[2]
   end
   idem = args[3] == "idem"
   tag = args[4] .. "-" .. thread_number .. "-"
   local thread_count = tonumber(args[5]) or 1
   position = math.floor((thread_number - 1) * #plan / thread_count) % #plan + 1
   counter = 0
end

function request()
   local item = plan[position]
   position = position % #plan + 1
   counter = counter + 1
   local unique = tag .. counter
   local body = nil
   if item.body ~= "" then
      body = (item.body:gsub("{{n}}", unique))
      headers["Content-Type"] = "application/json"
   else
      headers["Content-Type"] = nil
   end
   if idem and item.method == "POST" then
      headers["Idempotency-Key"] = "bench-" .. unique
   end
   return wrk.format(item.method, item.path, headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,' ..
      '"mean_us":%.1f,"max_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
      '"status":%d,"timeout":%d}}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
      latency:percentile(99), latency.mean, latency.max, e.connect, e.read, e.write, e.status,
      e.timeout))
end
