/* Lua's pattern functions (string.find, match, gmatch, gsub) under the rules' time budget.
 *
 * The string library's own matcher is C code that backtracks: a pattern such as
 * string.rep("a*", 20) .. "b" on a few thousand characters runs for hours, and the count hook
 * that stops a runaway loop never fires inside C. These are the same functions (Lua 5.4's
 * matcher, same results and error messages) with a step counter: every RB_SCRIPT_STR_STEPS
 * steps of matching they call the owner's check, which raises the time-limit error once the
 * call's deadline has passed. */
#ifndef RB_SCRIPT_STR_H
#define RB_SCRIPT_STR_H

#include <lua.h>

#define RB_SCRIPT_STR_STEPS 4096

/* Called every RB_SCRIPT_STR_STEPS steps of matching; raises (lua_error) to stop it. */
struct rb_script_str_clock {
    void (*check)(lua_State *L);
};

/* Replaces find, match, gmatch and gsub in the string table at index idx with the budgeted
 * ones. clock is borrowed and must outlive the state (a static const). */
void rb_script_str_wrap(lua_State *L, int idx, const struct rb_script_str_clock *clock);

#endif
