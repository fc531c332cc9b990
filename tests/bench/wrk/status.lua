-- wrk script: public status look-ups by tracking number + last four phone digits, spread over
-- the tracking numbers in $RB_BENCH_TRACKING (a file: "TRACKING LAST4" per line).
local list = {}
for line in io.lines(os.getenv("RB_BENCH_TRACKING")) do
  local tn, l4 = line:match("^(%S+)%s+(%S+)$")
  if tn then table.insert(list, "/api/v1/cases/" .. tn .. "?phone_last4=" .. l4) end
end
request = function()
  return wrk.format("GET", list[math.random(#list)])
end
