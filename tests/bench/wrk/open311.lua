-- wrk script: an Open311 client filing requests: POST /open311/v2/requests.{json,xml},
-- form-encoded with the API key, English and Urdu descriptions, a location (lat/long or an
-- address), no contact (anonymous, as the JSON side of the bench); counts answers by status.
-- Environment: RB_BENCH_O311_KEY (an API key the bench stored), RB_BENCH_O311_FMT (json|xml).
local key = os.getenv("RB_BENCH_O311_KEY") or "missing"
local fmt = os.getenv("RB_BENCH_O311_FMT") or "json"
local reqs = {
  {"domicile_certificate", "My%20domicile%20certificate%20has%20been%20pending%20for%20two%20months%20without%20any%20reason%20given"},
  {"property_registration", "%D9%BE%D9%B9%D9%88%D8%A7%D8%B1%DB%8C%20%D9%86%DB%92%20%D9%81%D8%B1%D8%AF%20%DA%A9%DB%92%20%D8%A7%D8%AC%D8%B1%D8%A7%D8%A1%20%D9%85%DB%8C%DA%BA%20%D8%AA%DB%8C%D9%86%20%DB%81%D9%81%D8%AA%DB%92%20%D9%84%DA%AF%D8%A7%20%D8%AF%DB%8C%DB%92"},
  {"driving_licence_issue", "The%20licence%20office%20asked%20me%20to%20come%20back%20five%20times%20for%20the%20same%20test"},
  {"treatment_dhq", "%DB%81%D8%B3%D9%BE%D8%AA%D8%A7%D9%84%20%D9%85%DB%8C%DA%BA%20%DA%88%D8%A7%DA%A9%D9%B9%D8%B1%20%D9%85%D9%88%D8%AC%D9%88%D8%AF%20%D9%86%DB%81%DB%8C%DA%BA%20%D8%AA%DA%BE%DB%92"},
}
local path = "/open311/v2/requests." .. fmt

request = function()
  local r = reqs[math.random(#reqs)]
  local where
  if math.random(2) == 1 then
    where = string.format("lat=%.5f&long=%.5f", 31.4 + math.random() * 0.3, 74.2 + math.random() * 0.3)
  else
    where = "address_string=Mall%20Road%2C%20Lahore"
  end
  local body = string.format("api_key=%s&service_code=%s&description=%s&%s", key, r[1], r[2], where)
  return wrk.format("POST", path, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

-- Counting and the summary: count201.lua, next to this script.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "count201.lua")
