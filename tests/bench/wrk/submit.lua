-- wrk script: POST realistic cases to /api/v1/cases as many distinct signed-in citizens,
-- English and Urdu texts, and count answers by status (printed by done()).
-- Tokens are "bench-token-NNNNNNNN" for n in 1..RB_BENCH_CITIZENS (the bench seeds them).
local citizens = tonumber(os.getenv("RB_BENCH_CITIZENS") or "20000")
local anonymous = os.getenv("RB_BENCH_ANONYMOUS") == "1" -- no sign-in look-up per request
local idempotent = os.getenv("RB_BENCH_IDEMPOTENCY") == "1" -- an Idempotency-Key per request
local texts = {
  {"en", "complaint", "domicile_certificate", "My domicile certificate has been pending for two months without any reason given"},
  {"ur", "complaint", "property_registration", "پٹواری نے فرد کے اجراء میں تین ہفتے لگا دیے اور بار بار چکر لگوائے"},
  {"en", "complaint", "driving_licence_issue", "The licence office asked me to come back five times for the same test"},
  {"ur", "complaint", "treatment_dhq", "ہسپتال میں ڈاکٹر موجود نہیں تھے اور دوائی باہر سے منگوائی گئی"},
  {"en", "information", "arms_licence", "How many days does an arms licence renewal take and what documents are needed?"},
  {"ur", "feedback", "vehicle_registration", "گاڑی کی رجسٹریشن بہت جلدی ہو گئی، عملے کا شکریہ"},
}
local districts = {"lahore", "faisalabad", "rawalpindi", "multan", "gujranwala", "sargodha", "bahawalpur", "sialkot"}
local function esc(s) return (s:gsub('\\', '\\\\'):gsub('"', '\\"')) end

-- Per-thread counters are plain numbers: wrk copies only scalars between threads.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args) n201, n4xx, n5xx, nother, seq = 0, 0, 0, 0, 0 end

request = function()
  local t = texts[math.random(#texts)]
  local body = string.format('{"kind":"%s","service":"%s","district":"%s","language":"%s","text":"%s"%s}',
    t[2], t[3], districts[math.random(#districts)], t[1], esc(t[4]), anonymous and ',"anonymous":true' or "")
  local headers = {["Content-Type"] = "application/json"}
  if not anonymous then
    headers["Authorization"] = string.format("Bearer bench-token-%08d", math.random(citizens))
  end
  if idempotent then
    seq = seq + 1
    headers["Idempotency-Key"] = string.format("bench-%d-%d-%d", os.time(), tid, seq)
  end
  return wrk.format("POST", "/api/v1/cases", headers, body)
end

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
