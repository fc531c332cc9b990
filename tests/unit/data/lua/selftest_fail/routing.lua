-- A rule that sends bribes to the wrong department; its self-test catches it.
function route(case)
  if case.text and case.text:find("رشوت", 1, true) then
    return { department = "revenue", category = "corruption", priority = 1 }
  end
  return { department = "bureau", category = "triage" }
end

tests = {
  { name = "plain", case = { text = "hello" }, expect = { department = "bureau" } },
  { name = "bribe in urdu", case = { language = "ur", text = "رشوت" },
    expect = { department = "police", priority = 1 } },
}
