-- Shared by wrk scripts whose requests create something (answered 201): counts answers by
-- status per thread and prints the totals and latency percentiles in done(). Loaded with
-- dofile(HERE .. "count201.lua") after the script sets its request function.
-- Each thread gets its number (tid) and a request counter (seq) for scripts that need unique
-- keys; wrk copies only scalars between threads.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args) n201, n4xx, n5xx, nother, seq = 0, 0, 0, 0, 0 end

response = function(status, headers, body)
  if status == 201 then n201 = n201 + 1
  elseif status >= 400 and status < 500 then n4xx = n4xx + 1
    if n4xx <= 3 then io.stderr:write("4xx: " .. body .. "\n") end
  elseif status >= 500 then n5xx = n5xx + 1
    if n5xx <= 3 then io.stderr:write("5xx: " .. body .. "\n") end
  else nother = nother + 1 end
end

function done(summary, latency, requests)
  local t = {0, 0, 0, 0}
  for _, th in ipairs(threads) do
    t[1] = t[1] + th:get("n201"); t[2] = t[2] + th:get("n4xx")
    t[3] = t[3] + th:get("n5xx"); t[4] = t[4] + th:get("nother")
  end
  io.write(string.format("status 201: %d\nstatus 4xx: %d\nstatus 5xx: %d\nstatus other: %d\n", t[1], t[2], t[3], t[4]))
  io.write(string.format("p50_ms %.2f\np99_ms %.2f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
