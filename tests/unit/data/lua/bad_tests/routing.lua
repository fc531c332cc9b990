function route(case) return { department = "police" } end
tests = {
  { name = "typo in a case field", case = { servce = "fard" }, expect = { department = "police" } },
  { name = "typo in expect", case = {}, expect = { departmnt = "police" } },
  "not a table",
}
