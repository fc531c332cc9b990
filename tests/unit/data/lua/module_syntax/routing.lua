function route(case) return { department = "police" } end
