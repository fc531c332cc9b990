-- Deliberately broken and hostile rules for tests/unit/test_script.c. case.text picks the
-- misbehaviour; the test finds lines by the MARK comments, so keep each on its own line.
local helper = require("helper")

local function probe()
  -- Returns the name of the first dangerous thing the sandbox lets through, or nil.
  if io ~= nil then return "io" end
  if package ~= nil then return "package" end
  if debug ~= nil then return "debug" end
  if load ~= nil then return "load" end
  if loadstring ~= nil then return "loadstring" end
  if dofile ~= nil then return "dofile" end
  if loadfile ~= nil then return "loadfile" end
  if rawset ~= nil then return "rawset" end
  if os.execute ~= nil then return "os_execute" end
  if os.getenv ~= nil then return "os_getenv" end
  if os.exit ~= nil then return "os_exit" end
  if os.remove ~= nil then return "os_remove" end
  if string.dump ~= nil then return "string_dump" end
  if ("").dump ~= nil then return "string_meta_dump" end
  if getmetatable("") ~= false then return "string_metatable" end
  if getmetatable(_ENV) ~= false then return "env_metatable" end
  if getmetatable(string) ~= false then return "proxy_metatable" end
  if pcall(collectgarbage, "collect") then return "collectgarbage_collect" end
  if type(collectgarbage("count")) ~= "number" then return "collectgarbage_count" end
  if pcall(require, "../etc/passwd") then return "require_path" end
  if pcall(require, "io") then return "require_io" end
  if pcall(require, "/etc/passwd") then return "require_abs" end
  if pcall(setmetatable, string, {}) then return "setmetatable_proxy" end
  if pcall(function() string.upper = nil end) then return "string_write" end
  if pcall(table.insert, math, 1) then return "table_insert_proxy" end
  if pcall(function() config.services.fard = nil end) then return "config_write" end
  if config.departments.police.id ~= "police" then return "config_read" end
  if string.upper("a") ~= "A" or ("b"):upper() ~= "B" then return "string_use" end
  if #config.districts ~= 0 then return "len" end
  local n = 0
  for _ in pairs(string) do n = n + 1 end
  if n < 10 then return "pairs_proxy" end
  for _, v in pairs(string) do if v == nil then return "pairs_values" end end
  return nil
end

function route(case)
  local t = case.text
  if t == "loop" then
    while true do end -- MARK loop
  elseif t == "pcall_loop" then
    while true do pcall(function() while true do end end) end
  elseif t == "xpcall_loop" then
    while true do xpcall(function() while true do end end, function() while true do end end) end
  elseif t == "coroutine_loop" then
    while true do coroutine.resume(coroutine.create(function() while true do end end)) end
  elseif t == "rep" then
    local s = string.rep("x", 1e9) -- MARK rep
    return { department = "police", category = s }
  elseif t == "grow" then
    local big = {}
    for i = 1, 1e9 do big[i] = i end -- MARK grow
  elseif t == "grow_strings" then
    local big = {}
    for i = 1, 1e9 do big[i] = "item " .. i end
  elseif t == "pattern_find" then
    string.find(string.rep("a", 5000), string.rep("a*", 25) .. "b") -- MARK pattern_find
  elseif t == "pattern_match" then
    local x = string.rep("a", 5000)
    return x:match(string.rep("a-", 25) .. "b") -- MARK pattern_match
  elseif t == "pattern_gmatch" then
    for _ in string.gmatch(string.rep("a", 5000), string.rep("a?", 30) .. string.rep("a", 30) .. "b") do end -- MARK pattern_gmatch
  elseif t == "pattern_gsub" then
    local s = string.gsub(string.rep("(", 3000), string.rep("%(*", 20) .. "x", "") -- MARK pattern_gsub
  elseif t == "pattern_pcall" then
    while true do pcall(string.find, string.rep("a", 5000), string.rep("a*", 25) .. "b") end
  elseif t == "patterns_work" then
    local a, b, c = string.find("key = value", "(%w+)%s*=%s*(%w+)")
    local n = select(2, ("a,b,,c"):gsub(",", ";"))
    local words = {}
    for w in ("one two  three"):gmatch("%a+") do words[#words + 1] = w end
    local trimmed = ("  padded  "):match("^%s*(.-)%s*$")
    local pos = ("hello"):find("l", 1, true)
    local bal = ("f(a(b)c) d"):match("%b()")
    local front = ("THE (quick) fox"):gsub("%f[%a]%a+", function(w) return w:lower() end)
    local rep = ("abc"):gsub("(b)", "[%1%%%0]")
    local posc = ("abc"):match("()b()")
    local got = table.concat({ tostring(a), tostring(b), c, tostring(n), table.concat(words, "+"),
                               trimmed, tostring(pos), bal, front, rep, tostring(posc) }, "|")
    local want = "1|11|key|3|one+two+three|padded|3|(a(b)c)|the (quick) fox|a[b%b]c|2"
    if got ~= want then error("patterns: got " .. got) end
    return { department = "police", category = "patterns_ok" }
  elseif t == "long_error" then
    error(string.rep("ی", 400)) -- MARK long_error
  elseif t == "error" then
    error("deliberate failure") -- MARK error
  elseif t == "index_nil" then
    local x = nil
    return x.y -- MARK index_nil
  elseif t == "error_table" then
    error({ code = 42 }) -- MARK error_table
  elseif t == "wrong_type" then
    return "police"
  elseif t == "nothing" then
    return nil
  elseif t == "unknown_department" then
    return { department = "nowhere" }
  elseif t == "bad_priority" then
    return { department = "police", priority = 9 }
  elseif t == "float_priority" then
    return { department = "police", priority = 1.5 }
  elseif t == "bad_flags" then
    return { department = "police", flags = { "vip" } }
  elseif t == "bad_category" then
    return { department = "police", category = "Not A Slug" }
  elseif t == "sneaky_result" then
    return setmetatable({}, { __index = function() while true do end end })
  elseif t == "set_global" then
    leaked = (leaked or 0) + 1
    return { department = "police", category = "n" .. leaked }
  elseif t == "modify_shared" then
    string.upper = function() return "pwned" end -- MARK modify_shared
  elseif t == "probe" then
    local bad = probe()
    return { department = "police", category = bad and ("leak_" .. bad) or "sandboxed" }
  elseif t == "require_helper" then
    return { department = helper.department(), category = require("helper").category }
  elseif t == "require_loop" then
    return require("loop")
  elseif t == "require_missing" then
    return require("nope")
  elseif t == "gc" then
    setmetatable({}, { __gc = function() while true do end end })
  elseif t == "print" then
    print("hello", 42, case.district)
  elseif t == "case" then
    return { department = "police",
             category = table.concat({ case.service or "x", case.kind or "x", case.district or "x",
                                       case.channel or "x", case.language or "x",
                                       case.official and "official" or "x",
                                       case.lat and "lat" or "x" }, "_") }
  elseif t == "flags" then
    return { department = "health", category = "c", priority = 1, sla_policy = "urgent",
             flags = { "corruption", "urgent" } }
  end
  return { department = "police" }
end

tests = {
  { name = "plain", case = { text = "ok" }, expect = { department = "police", priority = 3 } },
}
