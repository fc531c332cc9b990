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

-- Counting and the summary: count201.lua, next to this script.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "count201.lua")
