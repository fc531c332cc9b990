-- wrk script: POST batches of 1,000 new transactions to /api/v1/transactions with an office's
-- API key (RB_BENCH_KEY) for office RB_BENCH_OFFICE; references are unique per thread and
-- request, so every transaction is new. Counts answers by status (printed by done()).
local key = os.getenv("RB_BENCH_KEY")
local office = os.getenv("RB_BENCH_OFFICE")
local services = {"driving_licence_issue", "driving_licence_renewal", "learner_permit",
                  "character_certificate", "fir_registration"}
local threads = {}
local counter = 0
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args) n200, nother = 0, 0 end

request = function()
  counter = counter + 1
  local parts = {}
  for i = 1, 1000 do
    parts[i] = string.format(
      '{"reference":"P%d-%d-%d","office":"%s","service":"%s","official":"%s.%d",' ..
      '"citizen_name":"Citizen","phone":"0301%07d","completed_at":"%s"}',
      tid, counter, i, office, services[i % 5 + 1], office, i % 3,
      (tid * 7919 + counter * 1000 + i) % 10000000, os.date("!%Y-%m-%dT%H:%M:%SZ"))
  end
  local body = '{"transactions":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/api/v1/transactions",
                    {["Content-Type"] = "application/json", ["X-Api-Key"] = key}, body)
end

response = function(status, headers, body)
  if status == 200 then n200 = n200 + 1 else nother = nother + 1 end
end

function done(summary, latency, requests)
  local a, o = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("n200"); o = o + t:get("nother") end
  io.write(string.format("answers: 200=%d other=%d\n", a, o))
end
