-- Fails while loading, on line 3.
local t = nil
local x = t.field
function route(case) return { department = "police" } end
