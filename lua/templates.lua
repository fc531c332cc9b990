-- Message templates: every SMS Rabta writes, in Urdu and English (docs/sms.md, "Templates").
--
--   template("name", { en = "...", ur = "..." })
--
-- {placeholder} is replaced by a value the server passes (each template's allowed names are
-- listed above it). At --check, start and reload every template must render in both
-- languages within 320 characters (about two English or five Urdu SMS parts); a missing
-- template, an unknown {placeholder} or a malformed text is refused with this file's line.
-- Keep replies short: an Urdu SMS part holds about 67 characters.

-- ---- answers to a citizen's SMS (sms_kannel) ----------------------------------------------

-- {tracking}
template("sms.received", {
  en = "Rabta: your complaint is registered. Tracking number: {tracking}. Send STATUS {tracking} to follow it.",
  ur = "رابطہ: آپ کی شکایت درج ہو گئی ہے۔ ٹریکنگ نمبر {tracking} ہے۔ حالت جاننے کے لیے حالت {tracking} لکھ کر بھیجیں۔",
})

-- {tracking} {status} (status: one of the status.* texts below, in the same language)
template("sms.status", {
  en = "Rabta: complaint {tracking} is {status}.",
  ur = "رابطہ: شکایت {tracking} کی حالت: {status}۔",
})

-- {tracking}: what the citizen typed
template("sms.not_found", {
  en = "Rabta: no complaint {tracking} was found for this phone. Please check the tracking number.",
  ur = "رابطہ: اس نمبر سے {tracking} کی کوئی شکایت نہیں ملی۔ ٹریکنگ نمبر دوبارہ دیکھیں۔",
})

template("sms.help", {
  en = "Rabta: to complain, send your complaint as a message. To follow it, send STATUS and the tracking number. Send STOP to get no more notices.",
  ur = "رابطہ: شکایت درج کرنے کے لیے اپنی شکایت لکھ کر بھیجیں۔ حالت جاننے کے لیے حالت اور ٹریکنگ نمبر بھیجیں۔ پیغامات بند کرنے کے لیے بند بھیجیں۔",
})

template("sms.stop", {
  en = "Rabta: you will get no more notices. Send START to get them again.",
  ur = "رابطہ: آپ کو مزید اطلاعات نہیں بھیجی جائیں گی۔ دوبارہ شروع کرنے کے لیے شروع بھیجیں۔",
})

template("sms.start", {
  en = "Rabta: notices are on again.",
  ur = "رابطہ: اطلاعات دوبارہ شروع کر دی گئی ہیں۔",
})

-- One reply when a phone sends more texts than the flood limit allows; then silence.
template("sms.flood", {
  en = "Rabta: we have received many messages from this number. Please wait a while before sending more; your messages are saved.",
  ur = "رابطہ: اس نمبر سے بہت سے پیغامات موصول ہوئے ہیں۔ براہ کرم کچھ دیر بعد مزید بھیجیں؛ آپ کے پیغامات محفوظ ہیں۔",
})

-- {tracking}: after "1" (satisfied) to a resolve notice
template("sms.rated", {
  en = "Rabta: thank you. Complaint {tracking} is closed.",
  ur = "رابطہ: شکریہ۔ شکایت {tracking} بند کر دی گئی ہے۔",
})

-- {tracking}: after "2" (not satisfied)
template("sms.reopened", {
  en = "Rabta: sorry. Complaint {tracking} is reopened and sent to a senior officer.",
  ur = "رابطہ: معذرت۔ شکایت {tracking} دوبارہ کھول کر اعلیٰ افسر کو بھیج دی گئی ہے۔",
})

-- {tracking}: a "1" or "2" after the reopen window (close.reopen_window in the SLA file)
template("sms.rating_closed", {
  en = "Rabta: complaint {tracking} can no longer be rated or reopened. If the problem is still there, please send a new complaint.",
  ur = "رابطہ: شکایت {tracking} پر اب رائے یا دوبارہ کھولنا ممکن نہیں۔ اگر مسئلہ باقی ہے تو نئی شکایت بھیجیں۔",
})

-- {tracking}: the citizen's text was added to that complaint as their answer to an
-- officer's question
template("sms.replied", {
  en = "Rabta: thank you. Your answer was added to complaint {tracking}.",
  ur = "رابطہ: شکریہ۔ آپ کا جواب شکایت {tracking} میں شامل کر دیا گیا ہے۔",
})

-- {tracking}: what the citizen typed before their answer, when it is not one of their
-- complaints waiting for an answer (mistyped, someone else's, or not waiting)
template("sms.reply_not_found", {
  en = "Rabta: no complaint {tracking} of yours is waiting for an answer. Please check the number, or send your answer without it.",
  ur = "رابطہ: آپ کی کوئی شکایت {tracking} جواب کی منتظر نہیں۔ نمبر دوبارہ دیکھیں یا اپنا جواب نمبر کے بغیر بھیجیں۔",
})

-- ---- one-time code for the app (plugins/app) ----------------------------------------------

-- {code} {minutes}
template("otp", {
  en = "Your Rabta code is {code}. It expires in {minutes} minutes. Do not share it with anyone; Rabta staff will never ask for it.",
  ur = "آپ کا رابطہ کوڈ {code} ہے۔ یہ {minutes} منٹ میں ختم ہو جائے گا۔ یہ کوڈ کسی کو نہ بتائیں، رابطہ کا عملہ کبھی یہ کوڈ نہیں مانگے گا۔",
})

-- ---- notices on case events (core/messages/notice.c); {tracking} {department} ----------------------

template("notice.routed", {
  en = "Rabta: your complaint is registered with tracking number {tracking} and sent to {department}.",
  ur = "رابطہ: آپ کی شکایت ٹریکنگ نمبر {tracking} کے ساتھ درج ہو کر {department} کو بھیج دی گئی ہے۔",
})

template("notice.acknowledge", {
  en = "Rabta: {department} has received your complaint {tracking}.",
  ur = "رابطہ: {department} کو آپ کی شکایت {tracking} موصول ہو گئی ہے۔",
})

template("notice.transfer", {
  en = "Rabta: your complaint {tracking} has been transferred to {department}.",
  ur = "رابطہ: آپ کی شکایت {tracking} {department} کو منتقل کر دی گئی ہے۔",
})

template("notice.resolve", {
  en = "Rabta: your complaint {tracking} is resolved. Are you satisfied? Reply 1 satisfied, 2 unsatisfied.",
  ur = "رابطہ: آپ کی شکایت {tracking} حل کر دی گئی ہے۔ کیا آپ مطمئن ہیں؟ جواب دیں: ۱ مطمئن، ۲ غیر مطمئن۔",
})

template("notice.closed_no_reply", {
  en = "Rabta: your complaint {tracking} with {department} is closed because we did not receive your answer. You can send a new complaint at any time.",
  ur = "رابطہ: آپ کی شکایت {tracking} ({department}) بند کر دی گئی ہے کیونکہ آپ کا جواب موصول نہیں ہوا۔ آپ کسی بھی وقت نئی شکایت بھیج سکتے ہیں۔",
})

template("notice.answer", {
  en = "Rabta: your request {tracking} has been answered by {department}. Reply 1 satisfied, 2 unsatisfied.",
  ur = "رابطہ: آپ کی درخواست {tracking} کا جواب {department} نے دے دیا ہے۔ جواب دیں: ۱ مطمئن، ۲ غیر مطمئن۔",
})

-- ---- the duty officer's notice of a new case (plugins/staff_inbox) ------------------------

-- {kind} (a kind.* text below) {tracking} {department} {service} {district} {priority}
-- (1 is the most urgent). Never the complainant's name, phone or text.
template("duty.new_case", {
  en = "Rabta: new {kind} {tracking} for {department}: {service}, {district}, priority {priority}.",
  ur = "رابطہ: {department} کے لیے نئی {kind} {tracking}: {service}، {district}، ترجیح {priority}۔",
})

-- ---- escalations to staff (core/messages/escalation.c, docs/sla.md "Who is told") -------

-- {tracking} {department} {service} {level} (1, 2, ...) and how late: {hours} {minutes}
-- (whole hours past the resolution deadline, and the minutes past that). Sent to supervisors,
-- heads, oversight and duty officers by SMS or e-mail, and shown in the staff inbox. Never
-- the complainant's name, phone or text.
template("sla.escalated", {
  en = "Rabta: case {tracking} ({service}, {department}) is {hours} h {minutes} min past its deadline; escalation level {level}.",
  ur = "رابطہ: کیس {tracking} ({service}، {department}) مقررہ وقت سے {hours} گھنٹے {minutes} منٹ لیٹ ہے؛ درجہ {level} تک بڑھا دیا گیا۔",
})

template("kind.complaint", { en = "complaint", ur = "شکایت" })
template("kind.feedback", { en = "feedback", ur = "رائے" })
template("kind.information", { en = "information request", ur = "معلومات کی درخواست" })

-- ---- calls (channel "call", plugin ivr_asterisk, docs/ivr.md) ----------------------------
-- A call message's text says what the call is, for the staff who read the message; what the
-- citizen hears is the call script of lua/ivr.lua that the message's data names.

template("call.cfmp_survey", {
  en = "Rabta call: a survey about the public service you received (satisfied? asked for a bribe?).",
  ur = "رابطہ کال: آپ کو ملنے والی سرکاری سروس کے بارے میں سروے (کیا آپ مطمئن ہیں؟ کیا رشوت مانگی گئی؟)۔",
})

template("call.notice", {
  en = "Rabta call: a message about your complaint; please check your SMS.",
  ur = "رابطہ کال: آپ کی شکایت کے بارے میں پیغام؛ براہ کرم اپنے ایس ایم ایس دیکھیں۔",
})

-- ---- the words for a case's status (in sms.status) ----------------------------------------

template("status.submitted", { en = "registered", ur = "درج" })
template("status.routed", { en = "sent to the department", ur = "متعلقہ محکمے کو بھیج دی گئی" })
template("status.acknowledged", { en = "received by the department", ur = "محکمے کو موصول" })
template("status.in_progress", { en = "in progress", ur = "زیر کارروائی" })
template("status.awaiting_citizen", { en = "waiting for your answer", ur = "آپ کے جواب کی منتظر" })
template("status.resolved", { en = "resolved", ur = "حل ہو گئی" })
template("status.closed", { en = "closed", ur = "بند" })
template("status.rejected", { en = "rejected", ur = "مسترد" })
template("status.transferred", { en = "transferred to another department", ur = "دوسرے محکمے کو منتقل" })
template("status.reopened", { en = "reopened", ur = "دوبارہ کھولی گئی" })
template("status.answered", { en = "answered", ur = "جواب دے دیا گیا" })

-- ---- proactive feedback (lua/surveys.lua, docs/feedback.md) -----------------------------

-- {question}: a question of lua/surveys.lua, already in the citizen's language
template("survey.question", {
  en = "{question}",
  ur = "{question}",
})

-- {survey}: the survey's name. The body of a feedback call for the IVR's sender (the call
-- itself plays the survey's recorded prompts).
template("survey.call", {
  en = "Rabta feedback call: survey {survey}",
  ur = "رابطہ فیڈبیک کال: سروے {survey}",
})

template("survey.thanks", {
  en = "Rabta: thank you for your answers. They help us hold offices to account. Send STOP to get no more surveys.",
  ur = "رابطہ: آپ کے جوابات کا شکریہ۔ ان سے دفاتر کی جوابدہی ہوتی ہے۔ مزید سروے نہ چاہیں تو بند بھیجیں۔",
})
