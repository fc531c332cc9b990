-- A syntax error: the table opened on line 3 is not closed when line 4 says end.
function route(case)
  return { department = "police" 
end
