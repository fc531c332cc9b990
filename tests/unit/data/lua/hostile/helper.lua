-- A module for the require() tests.
local M = { category = "from_helper" }
function M.department() return "health" end
return M
