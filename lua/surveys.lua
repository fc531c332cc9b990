-- Surveys: what a citizen is asked after a public service (docs/feedback.md), by a recorded
-- call (keypad digits), by SMS (digits, or text for a comment) or by an agent on the phone.
--
-- A survey is a first question and its questions. Each question has
--   text     = {en = "...", ur = "..."}  what an SMS or an agent says ({service} and {office}
--              are replaced by the service's and the office's names)
--   prompt   = "name"                    the IVR's recorded prompt (sounds/<language>/<name>)
--   answers  = {["1"] = "yes", ...}      the digits allowed and what each means; or
--   free     = true                      any text (SMS) or a voice recording (call)
--   next     = "question" | function(answers) return "question" or nil end (nil: the end)
--
-- consequence(outcome, tx) decides what the answers lead to; outcome has the answers and
-- dissatisfied / bribe / delayed (true, false or nil when not answered) and comment; tx has
-- office, official, service, district. It returns {open_case = true, category = ..., priority
-- = 1..5, route_to = "supervisor"} to open a case, and appreciation = true to count a
-- positive answer for the official. A case goes to the office's supervisor, never to the
-- official concerned, and never shows the citizen's phone to the office.
--
-- tests run at --check, start and reload: the inputs in order (or given: the answers of a call
-- at once, question -> input) and what must come out.

local engine = require("survey_engine")

local YES_NO = { ["1"] = "yes", ["2"] = "no" }

local surveys = {}

surveys.default = {
  first = "satisfied",
  questions = {
    satisfied = {
      text = {
        en = "Rabta: you received {service} from {office}. Were you satisfied? Reply 1 for yes, 2 for no.",
        ur = "رابطہ: آپ نے {office} سے {service} حاصل کیا۔ کیا آپ مطمئن ہیں؟ ہاں کے لیے 1، نہیں کے لیے 2 بھیجیں۔",
      },
      prompt = "survey_satisfied",
      answers = YES_NO,
      next = "bribe",
    },
    bribe = {
      text = {
        en = "Did anyone ask you for a bribe or extra money? Reply 1 for yes, 2 for no.",
        ur = "کیا کسی نے آپ سے رشوت یا اضافی رقم مانگی؟ ہاں کے لیے 1، نہیں کے لیے 2 بھیجیں۔",
      },
      prompt = "survey_bribe",
      answers = YES_NO,
      next = "delayed",
    },
    delayed = {
      text = {
        en = "Was the service delayed? Reply 1 for yes, 2 for no.",
        ur = "کیا کام میں تاخیر ہوئی؟ ہاں کے لیے 1، نہیں کے لیے 2 بھیجیں۔",
      },
      prompt = "survey_delayed",
      answers = YES_NO,
      -- a comment only from those who had a problem
      next = function(a)
        if a.satisfied == "no" or a.bribe == "yes" or a.delayed == "yes" then
          return "comment"
        end
        return nil
      end,
    },
    comment = {
      text = {
        en = "Please tell us what happened, in your own words.",
        ur = "براہ کرم اپنے الفاظ میں بتائیں کہ کیا ہوا۔",
      },
      prompt = "survey_comment",
      free = true,
    },
  },
}

-- Words in a comment that make it a complaint even when the answers were positive.
local COMPLAINT_WORDS = { "bribe", "rishwat", "رشوت", "paise", "پیسے", "delay", "تاخیر",
                          "rude", "بدتمیز", "complaint", "شکایت" }

local function complains(comment)
  if not comment then return false end
  local c = string.lower(comment)
  for _, w in ipairs(COMPLAINT_WORDS) do
    if string.find(c, w, 1, true) then return true end
  end
  return false
end

local function consequence(o, tx)
  if o.bribe == true then
    return { open_case = true, category = "bribe", priority = 1, route_to = "supervisor" }
  end
  if o.dissatisfied == true or o.delayed == true or complains(o.comment) then
    return { open_case = true, category = "service_quality", priority = 3,
             route_to = "supervisor" }
  end
  if o.dissatisfied == false and o.bribe == false then
    return { appreciation = true }
  end
  return {}
end

local tests = {
  { name = "all well: appreciation, no case", inputs = { "1", "2", "2" },
    expect = { complete = true, appreciation = true, open_case = false } },
  { name = "a bribe opens a priority-1 case", inputs = { "1", "1", "2", "they took 500" },
    expect = { complete = true, bribe = true, open_case = true, category = "bribe",
               priority = 1 } },
  { name = "dissatisfied and delayed", inputs = { "2", "2", "1", "waited three weeks" },
    expect = { dissatisfied = true, delayed = true, open_case = true,
               category = "service_quality" } },
  { name = "a wrong digit is asked again", inputs = { "7", "1", "2", "2" },
    expect = { complete = true, open_case = false } },
  { name = "Urdu digits count", inputs = { "۱", "۲", "۲" },
    expect = { complete = true, appreciation = true } },
  { name = "stopping early is partial", inputs = { "2" },
    expect = { complete = false, dissatisfied = true, open_case = true } },
  -- a call's keypad answers arrive at once (given: question -> digits, or a recording)
  { name = "a call's answers with a voice comment", expect = { complete = true, bribe = true },
    given = { satisfied = "2", bribe = "1", delayed = "2", comment = "recording:rabta-1.wav" } },
  { name = "a call's answers stop at a wrong digit", expect = { complete = false },
    given = { satisfied = "1", bribe = "7", delayed = "2" } },
}

return engine.build(surveys, consequence, tests)
