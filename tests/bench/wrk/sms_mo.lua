-- wrk script: Kannel's sms-service calling GET /sms/kannel/mo, as many distinct phones,
-- English and Urdu complaints, a unique Kannel id (%I) per request; counts answers.
-- Environment: RB_BENCH_SECRET (the plugin's secret), RB_BENCH_PHONES (distinct senders).
local secret = os.getenv("RB_BENCH_SECRET") or "bench-sms-secret"
local phones = tonumber(os.getenv("RB_BENCH_PHONES") or "200000")
local texts = {
  "The%20street%20lights%20in%20block%20C%20have%20been%20off%20for%20two%20weeks",
  "%D8%B3%DA%91%DA%A9%20%D9%85%DB%8C%DA%BA%20%DA%AF%DA%91%DA%BE%DB%92%20%DB%81%DB%8C%DA%BA%20%D8%A7%D9%88%D8%B1%20%D9%BE%D8%A7%D9%86%DB%8C%20%DA%A9%DA%BE%DA%91%D8%A7%20%DB%81%DB%92",
  "Water%20supply%20cut%20for%20three%20days%20in%20our%20mohalla%2C%20please%20help",
}
local threads, counter = {}, 0
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  n200, n4xx, n5xx, nother, seq = 0, 0, 0, 0, 0
  -- Each thread its own sequence of senders: unseeded, every thread draws the same phones in
  -- the same order, so the same new citizen arrives in two batches at once and one waits for
  -- the other's row lock (a cost no real stream of SMS from 200,000 phones has).
  math.randomseed(os.time() * 1000 + tid)
end

request = function()
  seq = seq + 1
  local path = string.format("/sms/kannel/mo?secret=%s&from=%%2B92301%07d&to=8080&text=%s&id=bench-%d-%d-%d",
    secret, math.random(phones), texts[math.random(#texts)], os.time(), tid, seq)
  return wrk.format("GET", path)
end

response = function(status, headers, body)
  if status == 200 then n200 = n200 + 1
  elseif status >= 400 and status < 500 then n4xx = n4xx + 1
    if n4xx <= 3 then io.stderr:write("4xx: " .. body .. "\n") end
  elseif status >= 500 then n5xx = n5xx + 1
  else nother = nother + 1 end
end

function done(summary, latency, requests)
  local t = {0, 0, 0, 0}
  for _, th in ipairs(threads) do
    t[1] = t[1] + th:get("n200"); t[2] = t[2] + th:get("n4xx")
    t[3] = t[3] + th:get("n5xx"); t[4] = t[4] + th:get("nother")
  end
  io.write(string.format("status 200: %d\nstatus 4xx: %d\nstatus 5xx: %d\nstatus other: %d\n", t[1], t[2], t[3], t[4]))
  io.write(string.format("p50_ms %.2f\np99_ms %.2f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
