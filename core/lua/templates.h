/* Message templates: lua/templates.lua declares them (template("name", {en = "...",
 * ur = "..."}) at the files' top level, when the rules load in core/lua/script.c), this file
 * keeps them, checks them and renders them. Rendering replaces {placeholders} with values from
 * a JSON object and runs no Lua. The names the code uses, and the placeholders each may use,
 * are the table at the top of templates.c: a templates file that lacks one, or misspells a
 * placeholder, is refused at --check, start and reload with lua/templates.lua:LINE.
 *
 * Owns: the template set of one rules set (a reload swaps rules and templates together).
 * Calls: base (text, common), config (errors), cases (the case states' names). */
#ifndef RB_TEMPLATES_H
#define RB_TEMPLATES_H

#include <stddef.h>

#include <jansson.h>

#include "config/yaml_doc.h"

struct lua_State;

#define RB_TEMPLATES_MODULE "templates"
/* Longest template text and longest rendered message, in characters (code points): about
 * two GSM parts, five Urdu (UCS-2, 67 a part) parts. */
#define RB_TEMPLATE_MAX_CHARS 320

/* One message template of lua/templates.lua. */
struct rb_template {
    char *name, *en, *ur; /* owned */
    int line;             /* where template() was called in lua/templates.lua */
};

/* The templates of one rules set, in the order declared. */
struct rb_templates {
    struct rb_template *v; /* owned */
    size_t n;
};

/* The Lua side of template(name, {en = "...", ur = "..."}), called by the sandbox with the
 * arguments at stack indexes 1 and 2: checks them (raising a Lua error, which the sandbox's
 * message handler places at the caller's file:line) and adds a copy to ts. */
int rb_templates_declare(struct lua_State *L, struct rb_templates *ts);
/* The template called name, or NULL. Borrowed. ts may be NULL. */
const struct rb_template *rb_templates_find(const struct rb_templates *ts, const char *name);
/* Frees what ts holds (not ts itself) and empties it. */
void rb_templates_clear(struct rb_templates *ts);

/* 1 when name (len bytes) is a template name: [a-z0-9_.], 1..63, starting with a letter. */
int rb_template_name_ok(const char *name, size_t len);
/* NULL when text can be a template; else a static reason that reads after "the en text ":
 * "is empty", "is not valid UTF-8", "has a malformed placeholder ...", "is longer than ...". */
const char *rb_template_text_check(const char *text, size_t len);
/* Replaces each {name} of text with params[name] (a string, or a number written as such).
 * Returns a new string (caller frees), or NULL with why set (a placeholder without a value). */
char *rb_template_fill(const char *text, const json_t *params, char *why, size_t whylen);
/* Renders template name in language ("ur" or "en"; anything else: "ur") from ts (NULL: none).
 * Returns a new string (caller frees), or NULL with why (no such template, missing value,
 * rendered text longer than RB_TEMPLATE_MAX_CHARS). */
char *rb_template_render(const struct rb_templates *ts, const char *name, const char *language,
                         const json_t *params, char *why, size_t whylen);
/* Load-time check of the templates: the required ones exist, use only their
 * placeholders, and every template renders in both languages within the length limit.
 * Adds "lua/templates.lua:LINE: ..." errors. */
void rb_templates_check(const struct rb_templates *ts, struct rb_errors *errs);

#endif
