-- The phone channel (plugin ivr_asterisk, docs/ivr.md): the prompt catalogue, the hotline's
-- menus, the trunks and retry policies of outbound calls, and the call scripts.
--
-- Prompts are sound files Asterisk plays from its sounds directory:
--   <sounds>/<prompts.dir>/<language>/<name>.<format>, e.g. sounds/rabta/ur/main-menu.wav
-- Every prompt the hotline or a script names must be listed below for BOTH languages;
-- `rabtad --check` and a reload refuse a name the catalogue lacks, and run the `tests` at
-- the end of this file.

local hotline_prompts = {
  "choose-language",   -- "For Urdu press 1. For English press 2." (in both languages)
  "main-menu",         -- "To register a complaint press 1, for the status of your complaints 2, to leave feedback 3."
  "invalid",           -- "Sorry, that key is not in the menu."
  "choose-service",    -- "Which office is your complaint about?"
  "record-after-beep", -- "After the beep, say your complaint; press # when you are done."
  "registered",        -- "Your complaint is registered. Your tracking number is:"
  "your-case",         -- "Complaint number:"
  "no-cases",          -- "There is no complaint from this phone number."
  "feedback-rate",     -- "Rate our service from 1 (poor) to 5 (excellent)."
  "thank-you",         -- "Thank you."
  "goodbye",           -- "Thank you for calling Rabta. Goodbye."
  "sorry",             -- "Sorry, something went wrong. Please call again later."
  -- one per case state: "... is registered / with the department / resolved ..."
  "status-submitted", "status-routed", "status-acknowledged", "status-in_progress",
  "status-awaiting_citizen", "status-resolved", "status-closed", "status-rejected",
  "status-transferred", "status-reopened", "status-answered",
  -- one per service of the hotline's menu: "For domicile, press 1." and so on
  "service-domicile_certificate", "service-fard", "service-driving_licence_issue",
  "service-fir_registration", "service-treatment_dhq", "service-general_complaint",
}

local survey_prompts = {
  "cfmp-intro",        -- "Assalam-o-Alaikum. This is Rabta, about the service you received."
  "cfmp-q-satisfied",  -- "Were you satisfied with the service? Yes 1, no 2."
  "cfmp-q-bribe",      -- "Were you asked for a bribe? Yes 1, no 2."
  "cfmp-thanks",       -- "Thank you for your answers."
  "notice-generic",    -- "Rabta has a message for you about your complaint; please check your SMS."
  -- the questions of lua/surveys.lua, asked by a survey call (survey_calls below)
  "survey_satisfied",  -- "Were you satisfied with the service? Yes 1, no 2."
  "survey_bribe",      -- "Did anyone ask you for a bribe or extra money? Yes 1, no 2."
  "survey_delayed",    -- "Was the service delayed? Yes 1, no 2."
  "survey_comment",    -- "After the beep, tell us what happened; press # when you are done."
}

local function catalogue()
  local all = {}
  for _, n in ipairs(hotline_prompts) do all[#all + 1] = n end
  for _, n in ipairs(survey_prompts) do all[#all + 1] = n end
  return all
end

return {
  prompts = { dir = "rabta", ur = catalogue(), en = catalogue() },

  hotline = {
    default_language = "ur",
    languages = { ["1"] = "ur", ["2"] = "en" },
    main = { ["1"] = "complaint", ["2"] = "status", ["3"] = "feedback" },
    -- keypad 1..n, in this order (at most 9); each needs its "service-<id>" prompt
    services = { "domicile_certificate", "fard", "driving_licence_issue", "fir_registration",
                 "treatment_dhq", "general_complaint" },
  },

  -- Outbound: {phone} is the number as stored, in E.164 (+923001234567); Asterisk's
  -- dialplan or the trunk's own rules rewrite it as the carrier wants.
  trunks = {
    default = { channel = "PJSIP/{phone}@pstn", max_calls = 30, rate = 5 },
  },

  policies = {
    -- max_attempts: dials in all (1-8); spacing: seconds between attempts (doubling);
    -- ring_timeout: seconds a phone may ring; max_call_length: seconds before rabtad ends
    -- the call; repeat_question: times a question without a keypad answer is asked again.
    default = { max_attempts = 3, spacing = 600, ring_timeout = 45, max_call_length = 300,
                repeat_question = 2 },
  },

  scripts = {
    -- A keypad script in the CFMP style. Proactive feedback does not use it: its calls ask
    -- the surveys of lua/surveys.lua (survey_calls below), whose questions are defined there.
    cfmp_survey = {
      policy = "default", trunk = "default", start = "intro",
      steps = {
        intro = { play = "cfmp-intro", next = "satisfied" },
        satisfied = { ask = "cfmp-q-satisfied", keys = { ["1"] = "bribe", ["2"] = "bribe" } },
        bribe = { ask = "cfmp-q-bribe", keys = { ["1"] = "thanks", ["2"] = "thanks" },
                  no_answer = "thanks" },
        thanks = { play = "cfmp-thanks" },
      },
    },
    -- A notice: one prompt, no questions.
    notice = {
      policy = "default", trunk = "default", start = "say",
      steps = { say = { play = "notice-generic" } },
    },
  },

  -- Surveys of lua/surveys.lua asked by phone: a call message whose data says
  -- script = "survey:<name>" (proactive feedback's calls, docs/feedback.md) plays intro, then
  -- each question's prompt from lua/surveys.lua (keypad digits as the survey allows them; a
  -- free question records the caller after a beep), then thanks. The questions, their digits
  -- and branching are the survey's only; every question's prompt must be in the catalogue.
  survey_calls = { policy = "default", trunk = "default", intro = "cfmp-intro",
                   thanks = "cfmp-thanks" },

  -- Self-tests, run at --check and reload: keys pressed in order ("t": no key before the
  -- time-out); the answers kept and the last step.
  tests = {
    { script = "cfmp_survey", keys = "12", answers = { satisfied = "1", bribe = "2" },
      ends = "thanks" },
    { script = "cfmp_survey", keys = "9t1ttt", answers = { satisfied = "1" }, ends = "thanks" },
    { script = "notice", keys = "", answers = {}, ends = "say" },
  },
}
