-- The survey engine behind lua/surveys.lua: steps through a survey's questions and turns the
-- answers into an outcome. The server calls the functions build() returns (core/lua/script.c
-- rb_script_call); administrators change lua/surveys.lua, not this file.
--
--   start{survey, language, service, office}          -> the first question
--   answer{survey, language, service, office, question, input, answers}
--       -> {valid, answers, done, next = the next question or nil}
--   outcome{survey, answers, done, tx}                -> what the answers mean and lead to
--   questions{survey, language}                       -> every question (agents, the IVR)
--   walk{survey, language, given}                     -> the survey replayed with the answers
--       given at once (a call's keypad, an agent): {answers, done, next, invalid}
--   all{language}                                     -> {surveys = {name = {first, questions}}}
--   self_test{}                                       -> a list of failures (empty: all pass)
--
-- A question as the server sees it: {question, text, prompt, answers = {"1", "2"}, free}.
-- Measures come from the questions' ids: satisfied ("no": dissatisfied), bribe ("yes"),
-- delayed ("yes"), comment (the text).

local M = {}

-- "۱" (U+06F1) and "١" (U+0661) read as "1"; blanks around the answer are dropped.
local function fold_digits(s)
  s = string.gsub(s, "^%s+", "")
  s = string.gsub(s, "%s+$", "")
  s = string.gsub(s, "\xDB([\xB0-\xB9])", function(c) return tostring(string.byte(c) - 0xB0) end)
  s = string.gsub(s, "\xD9([\xA0-\xA9])", function(c) return tostring(string.byte(c) - 0xA0) end)
  return s
end

local function fill(text, req)
  return (string.gsub(text, "{(%a+)}", function(k) return req[k] or "" end))
end

local function survey_of(all, name)
  local s = all[name or "default"]
  if not s then error("no survey \"" .. tostring(name) .. "\" in lua/surveys.lua", 0) end
  return s
end

local function describe(s, id, req)
  local q = s.questions[id]
  if not q then error("lua/surveys.lua: no question \"" .. tostring(id) .. "\"", 0) end
  local lang = req.language == "en" and "en" or "ur"
  local digits = {}
  for d in pairs(q.answers or {}) do digits[#digits + 1] = d end
  table.sort(digits)
  return { question = id, text = fill(q.text[lang] or q.text.ur, req), prompt = q.prompt,
           answers = digits, free = q.free == true }
end

local function next_of(q, answers)
  if type(q.next) == "function" then return q.next(answers) end
  return q.next
end

local function answer(all, req)
  local s = survey_of(all, req.survey)
  local q = s.questions[req.question]
  if not q then error("lua/surveys.lua: no question \"" .. tostring(req.question) .. "\"", 0) end
  local answers = {}
  for k, v in pairs(req.answers or {}) do answers[k] = v end
  local input = req.input or ""
  local value
  if q.free then
    value = input ~= "" and input or nil
  else
    value = q.answers[fold_digits(input)]
  end
  if value == nil then
    return { valid = false, answers = answers, done = false,
             next = describe(s, req.question, req) }
  end
  answers[req.question] = value
  local nx = next_of(q, answers)
  if nx == nil then
    return { valid = true, answers = answers, done = true }
  end
  return { valid = true, answers = answers, done = false, next = describe(s, nx, req) }
end

-- Replays the survey from its first question with the inputs of req.given (question id ->
-- digits or text, in any order): stops at the first question not given (next: that question),
-- at one whose input is not allowed (invalid: its id, next: that question) or at the end
-- (done). answers: what the inputs taken mean.
local function walk(all, req)
  local s = survey_of(all, req.survey)
  local given, answers = req.given or {}, {}
  local q = describe(s, s.first, req)
  local out = { done = false }
  while q do
    local input = given[q.question]
    if input == nil then break end
    local r = answer(all, { survey = req.survey, language = req.language, service = req.service,
                            office = req.office, question = q.question, input = input,
                            answers = answers })
    if not r.valid then
      out.invalid = q.question
      break
    end
    answers = r.answers
    out.done = r.done
    q = r.next
  end
  out.answers = answers
  out.next = q
  return out
end

local function questions(all, req)
  local s, out = survey_of(all, req.survey), {}
  local ids = {}
  for id in pairs(s.questions) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do out[#out + 1] = describe(s, id, req) end
  return { first = s.first, questions = out }
end

local function outcome(all, consequence, req)
  local a = req.answers or {}
  local o = { complete = req.done == true, comment = a.comment }
  if a.satisfied ~= nil then o.dissatisfied = a.satisfied == "no" end
  if a.bribe ~= nil then o.bribe = a.bribe == "yes" end
  if a.delayed ~= nil then o.delayed = a.delayed == "yes" end
  local c = consequence({ dissatisfied = o.dissatisfied, bribe = o.bribe, delayed = o.delayed,
                          comment = o.comment, answers = a }, req.tx or {}) or {}
  o.open_case = c.open_case == true
  o.appreciation = c.appreciation == true and not o.open_case
  o.category = c.category
  o.priority = c.priority
  o.route_to = c.route_to or (o.open_case and "supervisor" or nil)
  return o
end

local function run_test(all, consequence, t)
  local name = t.survey or "default"
  local q = describe(survey_of(all, name), survey_of(all, name).first, { language = "en" })
  local answers, done = {}, false
  for _, input in ipairs(t.inputs or {}) do
    if done then return "more inputs than questions" end
    local r = answer(all, { survey = name, language = "en", question = q.question,
                            input = input, answers = answers })
    answers, done = r.answers, r.done
    if r.next then q = r.next end
  end
  if t.given then
    local w = walk(all, { survey = name, language = "en", given = t.given })
    answers, done = w.answers, w.done
  end
  local o = outcome(all, consequence, { survey = name, answers = answers, done = done })
  for k, want in pairs(t.expect) do
    local got = k == "complete" and done or o[k]
    if k == "open_case" or k == "appreciation" then got = got == true end
    if got ~= want then
      return string.format("expected %s = %s, got %s", k, tostring(want), tostring(got))
    end
  end
  return nil
end

function M.build(all, consequence, tests)
  for name, s in pairs(all) do
    if type(s.first) ~= "string" or not s.questions[s.first] then
      error("lua/surveys.lua: survey \"" .. name .. "\" has no first question", 0)
    end
    for id, q in pairs(s.questions) do
      if type(q.text) ~= "table" or type(q.text.en) ~= "string" or type(q.text.ur) ~= "string" then
        error("lua/surveys.lua: question \"" .. id .. "\" needs text = {en = ..., ur = ...}", 0)
      end
      if not q.free and type(q.answers) ~= "table" then
        error("lua/surveys.lua: question \"" .. id .. "\" needs answers or free = true", 0)
      end
      if type(q.next) == "string" and not s.questions[q.next] then
        error("lua/surveys.lua: question \"" .. id .. "\": next names no question \"" ..
              q.next .. "\"", 0)
      end
    end
  end
  return {
    start = function(req)
      local s = survey_of(all, req.survey)
      return describe(s, s.first, req)
    end,
    answer = function(req) return answer(all, req) end,
    outcome = function(req) return outcome(all, consequence, req) end,
    questions = function(req) return questions(all, req) end,
    walk = function(req) return walk(all, req) end,
    all = function(req)
      local out = {}
      for name in pairs(all) do
        out[name] = questions(all, { survey = name, language = req.language })
      end
      return { surveys = out }
    end,
    self_test = function()
      local failures = {}
      for i, t in ipairs(tests or {}) do
        local ok, why = pcall(run_test, all, consequence, t)
        if not ok or why then
          failures[#failures + 1] = string.format("self-test \"%s\": %s",
            t.name or ("#" .. i), tostring(why))
        end
      end
      return { failures = failures, n = #(tests or {}) }
    end,
  }
end

return M
