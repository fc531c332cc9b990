-- Forgets to define route().
function rout(case)
  return { department = "police" }
end
