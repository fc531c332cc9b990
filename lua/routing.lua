-- lua/routing.lua: where every new case goes.
--
-- Rabta calls route(case) once for every complaint, feedback and information request, and
-- route() answers with the department that must deal with it, a category, a priority and an
-- SLA policy. docs/rules.md explains everything this file may use; in short:
--
--   case.service   service id from config/services (e.g. "fard"), or nil
--   case.kind      "complaint", "feedback" or "information"
--   case.text      what the citizen wrote or said (English, Urdu or Roman Urdu), or nil
--   case.district  district id (e.g. "lahore"), or nil
--   case.channel   "app", "sms", "ivr", "web" or "open311"
--   case.language  "ur" or "en"
--   case.lat, case.lon   location, or nil
--   case.official  name of an official the citizen names, or nil
--
-- route() returns a table:
--   department  (required) a department id from config/departments
--   category    a short lowercase name used in reports (default "general")
--   priority    1 (highest) to 5 (default 3)
--   sla_policy  which deadline policy applies (default "default")
--   flags       a list of "corruption", "harassment", "urgent"
--
-- If route() fails in any way (an error, a wrong answer, too slow, too much memory) the case
-- is not lost: it goes to the bureau's triage queue and the error is logged with this file's
-- name and the line. Before a new version of this file is used, Rabta runs the self-tests at
-- the bottom; if one fails, the old rules stay in force. Add a self-test for every rule.

-- Library functions we use often, looked up once.
local lower, find, gmatch = string.lower, string.find, string.gmatch

-- Where cases go that no department owns: the triage_department of config/rabta.yaml.
local TRIAGE = config.triage_department

------------------------------------------------------------------------------------------
-- 1. Which department owns a service.
--
-- By default the department named in the service's YAML file (config/services/NAME.yaml,
-- key "department"). To send one service's cases somewhere else without editing the YAML,
-- add it here, e.g.  character_certificate = "home",
------------------------------------------------------------------------------------------
local SERVICE_OWNER = {
}

local function owner_of(service)
  if service == nil then return nil end
  local dept = SERVICE_OWNER[service]
  if dept then return dept end
  local s = config.services[service]
  return s and s.department
end

------------------------------------------------------------------------------------------
-- 2. Warning words. A case whose text contains one of them gets the flag.
--
-- English and Roman Urdu words are matched as whole words, ignoring case: "bribe" matches
-- "Bribe" but not "bribes" (list every form you want). Phrases of several words and Urdu
-- words are matched anywhere in the text: "رشوت" also matches "رشوت ستانی".
------------------------------------------------------------------------------------------
local FLAG_WORDS = {
  -- corruption
  bribe = "corruption", bribes = "corruption", bribed = "corruption", bribery = "corruption",
  briber = "corruption", kickback = "corruption", kickbacks = "corruption",
  corrupt = "corruption", corruption = "corruption", extortion = "corruption",
  rishwat = "corruption", rishwet = "corruption", rishvat = "corruption",
  -- harassment
  harass = "harassment", harassed = "harassment", harassing = "harassment",
  harassment = "harassment", threat = "harassment", threats = "harassment",
  threatened = "harassment", misbehaved = "harassment", misbehaviour = "harassment",
  misbehavior = "harassment", abused = "harassment", abusive = "harassment",
  -- danger to life or health
  emergency = "urgent", dying = "urgent", unconscious = "urgent", bleeding = "urgent",
}

local FLAG_PHRASES = {
  { "speed money", "corruption" },
  { "chai pani", "corruption" },
  { "illegal gratification", "corruption" },
  { "under the table", "corruption" },
  { "رشوت", "corruption" },        -- bribe (also رشوت ستانی, bribery)
  { "چائے پانی", "corruption" },    -- "tea money"
  { "کرپشن", "corruption" },
  { "بدعنوانی", "corruption" },
  { "ہراساں", "harassment" },       -- harassed
  { "ہراسانی", "harassment" },      -- harassment
  { "دھمکی", "harassment" },        -- threat (also دھمکیاں)
  { "بدتمیزی", "harassment" },      -- misbehaviour
  { "ایمرجنسی", "urgent" },         -- emergency
  { "جان کا خطرہ", "urgent" },      -- danger to life
}

-- Words of thanks: feedback that contains them is counted as appreciation.
local THANKS_WORDS = {
  thank = true, thanks = true, thankyou = true, appreciate = true, excellent = true,
  shukriya = true,
}
local THANKS_PHRASES = { "شکریہ", "مشکور" }

------------------------------------------------------------------------------------------
-- 3. Topic words: which department a case belongs to when it names no service (or names
-- the bureau's general_complaint). When words of several departments appear, the
-- department listed first in TOPIC_ORDER wins.
------------------------------------------------------------------------------------------
local TOPIC_ORDER = {
  "police", "revenue", "health", "school_education", "local_government", "excise",
  "transport", "home", "district_administration",
}

local TOPIC_WORDS = {
  police = { "police", "fir", "thana", "sho", "constable", "policeman", "theft", "robbery",
             "stolen", "snatched" },
  revenue = { "patwari", "fard", "mutation", "intiqal", "registry", "tehsildar" },
  health = { "hospital", "doctor", "doctors", "medicine", "medicines", "nurse", "dhq", "thq",
             "bhu" },
  school_education = { "school", "teacher", "teachers", "headmaster", "principal" },
  local_government = { "garbage", "sewerage", "sewer", "drain", "streetlight", "streetlights",
                       "tma" },
  excise = { "excise" },
  transport = { "wagon", "fare", "fares" },
  home = { "arms", "weapon" },
  district_administration = { "domicile" },
}

local TOPIC_PHRASES = {
  { "driving licence", "police" }, { "driving license", "police" },
  { "ایف آئی آر", "police" }, { "تھان", "police" },           -- FIR; تھانہ/تھانے (police station)
  { "پولیس", "police" },
  { "پٹواری", "revenue" }, { "فرد ملکیت", "revenue" }, { "انتقال اراضی", "revenue" },
  { "رجسٹری", "revenue" },
  { "ہسپتال", "health" }, { "ڈاکٹر", "health" }, { "دوائی", "health" },
  { "سکول", "school_education" }, { "اسکول", "school_education" }, { "اساتذہ", "school_education" },
  { "union council", "local_government" }, { "کچرا", "local_government" },
  { "کوڑا", "local_government" }, { "گٹر", "local_government" }, { "سیوریج", "local_government" },
  { "token tax", "excise" }, { "number plate", "excise" }, { "ٹوکن ٹیکس", "excise" },
  { "نمبر پلیٹ", "excise" },
  { "route permit", "transport" }, { "کرایہ", "transport" },
  { "arms licence", "home" }, { "arms license", "home" }, { "اسلحہ", "home" },
  { "ڈومیسائل", "district_administration" },
}

-- Built once from the lists above: word -> rank in TOPIC_ORDER; and each phrase list split
-- in two, the phrases in Latin letters and those in Urdu script, so that a text with no Urdu
-- letter is not searched for Urdu phrases (most of the work for an English text).
local TOPIC_RANK, WORD_TOPIC = {}, {}
for rank, dept in ipairs(TOPIC_ORDER) do
  TOPIC_RANK[dept] = rank
  for _, w in ipairs(TOPIC_WORDS[dept]) do WORD_TOPIC[w] = rank end
end

local function is_urdu(s) return find(s, "[\128-\255]") ~= nil end

-- { latin = {...}, urdu = {...} } of the entries of list; key(entry) is the phrase.
local function by_script(list, key)
  local out = { latin = {}, urdu = {} }
  for _, e in ipairs(list) do
    local part = is_urdu(key(e)) and out.urdu or out.latin
    part[#part + 1] = e
  end
  return out
end

local FLAG_PHRASES_BY = by_script(FLAG_PHRASES, function(p) return p[1] end)
local PHRASE_TOPIC = {}
for _, p in ipairs(TOPIC_PHRASES) do
  PHRASE_TOPIC[#PHRASE_TOPIC + 1] = { p[1], TOPIC_RANK[p[2]] }
end
local PHRASE_TOPIC_BY = by_script(PHRASE_TOPIC, function(p) return p[1] end)
local THANKS_PHRASES_BY = by_script(THANKS_PHRASES, function(p) return p end)
local LATIN_ONLY, BOTH_SCRIPTS = { "latin" }, { "latin", "urdu" }

------------------------------------------------------------------------------------------
-- Reading the text once: flags found, thanks found, and the best topic.
------------------------------------------------------------------------------------------
local function scan(text)
  local f, thanks, rank = {}, false, nil
  if text == nil or text == "" then return f, thanks, rank end
  local low = lower(text)
  for w in gmatch(low, "%a+") do
    local flag = FLAG_WORDS[w]
    if flag then f[flag] = true end
    local r = WORD_TOPIC[w]
    if r and (rank == nil or r < rank) then rank = r end
    if THANKS_WORDS[w] then thanks = true end
  end
  local scripts = is_urdu(low) and BOTH_SCRIPTS or LATIN_ONLY
  for _, script in ipairs(scripts) do
    local flags, topics, thanks_list =
      FLAG_PHRASES_BY[script], PHRASE_TOPIC_BY[script], THANKS_PHRASES_BY[script]
    for i = 1, #flags do
      local p = flags[i]
      if not f[p[2]] and find(low, p[1], 1, true) then f[p[2]] = true end
    end
    for i = 1, #topics do
      local p = topics[i]
      if (rank == nil or p[2] < rank) and find(low, p[1], 1, true) then rank = p[2] end
    end
    if not thanks then
      for i = 1, #thanks_list do
        if find(low, thanks_list[i], 1, true) then thanks = true break end
      end
    end
  end
  return f, thanks, rank
end

local function flag_list(f)
  local list = {}
  if f.corruption then list[#list + 1] = "corruption" end
  if f.harassment then list[#list + 1] = "harassment" end
  if f.urgent then list[#list + 1] = "urgent" end
  return list
end

------------------------------------------------------------------------------------------
-- The rules, in order: the first that applies decides.
------------------------------------------------------------------------------------------
function route(case)
  local f, thanks, rank = scan(case.text)
  local flags = flag_list(f)

  -- The department: the service's owner; if there is none, or it is the triage department
  -- (the bureau's general_complaint), the topic of the text.
  local dept = owner_of(case.service)
  if (dept == nil or dept == TRIAGE) and rank then dept = TOPIC_ORDER[rank] end

  -- Corruption comes first, whatever the kind of case: CFMP feedback that reports a bribe
  -- is a complaint about corruption. It goes to the department concerned (never to the
  -- official named: Rabta makes sure of that), with the highest priority.
  if f.corruption then
    return { department = dept or TRIAGE, category = "corruption", priority = 1,
             sla_policy = "urgent", flags = flags }
  end

  if f.harassment then
    return { department = dept or TRIAGE, category = "harassment", priority = 2,
             sla_policy = "urgent", flags = flags }
  end

  -- Information requests must be answered within the statutory time.
  if case.kind == "information" then
    return { department = dept or TRIAGE, category = "information", priority = 4,
             sla_policy = "information", flags = flags }
  end

  if case.kind == "feedback" then
    return { department = dept or TRIAGE, category = thanks and "appreciation" or "feedback",
             priority = 5, sla_policy = "feedback", flags = flags }
  end

  -- A complaint nobody owns: the bureau triages it by hand.
  if dept == nil then
    return { department = TRIAGE, category = "triage", priority = f.urgent and 2 or 3,
             sla_policy = f.urgent and "urgent" or "default", flags = flags }
  end

  return { department = dept,
           category = case.service and "service_delivery" or "general",
           priority = f.urgent and 2 or 3,
           sla_policy = f.urgent and "urgent" or "default",
           flags = flags }
end

------------------------------------------------------------------------------------------
-- Self-tests: run before these rules are used. A case leaves out what it does not need
-- (kind defaults to "complaint", channel to "app", language to "en"); expect lists only
-- what is checked; flags, when given, must match exactly.
------------------------------------------------------------------------------------------
tests = {
  { name = "domicile goes to the district administration",
    case = { service = "domicile_certificate", text = "Application pending for two months" },
    expect = { department = "district_administration", category = "service_delivery",
               priority = 3, sla_policy = "default", flags = {} } },
  { name = "fard goes to revenue",
    case = { service = "fard", text = "Server down at the land record centre" },
    expect = { department = "revenue", category = "service_delivery", priority = 3 } },
  { name = "bribe in english",
    case = { service = "driving_licence_issue", text = "The clerk asked for a BRIBE of Rs 2000" },
    expect = { department = "police", category = "corruption", priority = 1,
               sla_policy = "urgent", flags = { "corruption" } } },
  { name = "bribe in urdu",
    case = { service = "fir_registration", language = "ur",
             text = "تھانے میں ایف آئی آر درج کرنے کے لیے رشوت مانگی گئی" },
    expect = { department = "police", category = "corruption", priority = 1,
               flags = { "corruption" } } },
  { name = "bribe in roman urdu",
    case = { service = "mutation", language = "ur", channel = "sms",
             text = "Patwari ne intiqal ke liye rishwat mangi" },
    expect = { department = "revenue", category = "corruption", priority = 1 } },
  { name = "bribery in urdu without a service goes by topic",
    case = { language = "ur", text = "پٹواری کی رشوت ستانی سے تنگ ہیں" },
    expect = { department = "revenue", category = "corruption", priority = 1,
               flags = { "corruption" } } },
  { name = "chai pani is a bribe",
    case = { service = "vehicle_registration",
             text = "They want chai pani before the number plate" },
    expect = { department = "excise", category = "corruption", priority = 1 } },
  { name = "harassment in english",
    case = { service = "treatment_dhq", text = "The ward staff harassed my mother" },
    expect = { department = "health", category = "harassment", priority = 2,
               sla_policy = "urgent", flags = { "harassment" } } },
  { name = "harassment in urdu",
    case = { service = "school_admission", language = "ur", text = "پرنسپل نے مجھے ہراساں کیا" },
    expect = { department = "school_education", category = "harassment", priority = 2,
               flags = { "harassment" } } },
  { name = "FIR without a service goes to police",
    case = { text = "Police refused to register my FIR" },
    expect = { department = "police", category = "general", priority = 3 } },
  { name = "thana in urdu without a service goes to police",
    case = { language = "ur", channel = "ivr", text = "تھانہ والے درخواست نہیں لے رہے" },
    expect = { department = "police", category = "general" } },
  { name = "fire is not FIR",
    case = { text = "There was a fire in our street and nobody came" },
    expect = { department = "bureau", category = "triage", priority = 3, sla_policy = "default" } },
  { name = "information request has the statutory deadline",
    case = { kind = "information", service = "birth_certificate",
             text = "Which documents are needed?" },
    expect = { department = "local_government", category = "information", priority = 4,
               sla_policy = "information" } },
  { name = "information request in urdu without a service",
    case = { kind = "information", language = "ur", text = "ڈومیسائل بنوانے کا طریقہ کیا ہے؟" },
    expect = { department = "district_administration", category = "information",
               sla_policy = "information" } },
  { name = "feedback has the lowest priority",
    case = { kind = "feedback", service = "token_tax", text = "Process was smooth" },
    expect = { department = "excise", category = "feedback", priority = 5,
               sla_policy = "feedback" } },
  { name = "thanks are appreciation",
    case = { kind = "feedback", service = "treatment_thq",
             text = "Thank you, the doctor was kind" },
    expect = { department = "health", category = "appreciation", priority = 5 } },
  { name = "thanks in urdu are appreciation",
    case = { kind = "feedback", language = "ur", service = "fard",
             text = "بہت شکریہ، کام جلدی ہو گیا" },
    expect = { department = "revenue", category = "appreciation", priority = 5 } },
  { name = "feedback reporting a bribe is corruption",
    case = { kind = "feedback", service = "property_registration", channel = "ivr",
             text = "I had to pay a bribe at the registry" },
    expect = { department = "revenue", category = "corruption", priority = 1,
               flags = { "corruption" } } },
  { name = "unknown service without keywords goes to triage",
    case = { service = "no_such_service", text = "My issue is not resolved" },
    expect = { department = "bureau", category = "triage", priority = 3, sla_policy = "default",
               flags = {} } },
  { name = "empty phone complaint goes to triage",
    case = { channel = "ivr" },
    expect = { department = "bureau", category = "triage" } },
  { name = "emergency is urgent",
    case = { service = "treatment_dhq", text = "Emergency: patient dying, no doctor on duty" },
    expect = { department = "health", priority = 2, sla_policy = "urgent", flags = { "urgent" } } },
  { name = "garbage in urdu goes to local government",
    case = { language = "ur", text = "گلی میں کچرا کئی دن سے پڑا ہے" },
    expect = { department = "local_government", category = "general", priority = 3 } },
  { name = "general complaint is sent on by topic",
    case = { service = "general_complaint", text = "The hospital has no medicines" },
    expect = { department = "health", category = "service_delivery" } },
}
