-- Never finishes loading.
while true do end
function route(case) return { department = "police" } end
