-- wrk script: staff sign-ins (argon2id) with the right password, as fast as the server takes
-- them; $RB_BENCH_USER / $RB_BENCH_PASSWORD name the account.
local body = string.format('{"username":"%s","password":"%s"}',
                           os.getenv("RB_BENCH_USER"), os.getenv("RB_BENCH_PASSWORD"))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = body
