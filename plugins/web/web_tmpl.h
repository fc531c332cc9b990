/* Page templates administrators edit (lua/web/NAME.html), compiled at start and reload, with
 * escaping chosen by where each placeholder stands in the HTML (docs/web.md "Templates").
 *
 *   {{name}} {{a.b}} {{.}}    a value from the page's data (JSON), escaped for its context
 *   {{#name}}...{{/name}}     repeated for each item of an array, once for a true value or an
 *                             object (whose members are then in scope), never for false/null/""
 *   {{^name}}...{{/name}}     once when name is false, null, "", 0 or an empty array
 *   {{@key}}                  the words for key in the page's language (strings.json)
 *   {{>name}}                 another template (name.html) in place
 *   {{! comment }}
 *
 * Contexts, decided when the template is compiled by following the HTML around each
 * placeholder: element text (HTML-escaped), a quoted attribute value (attribute-escaped), a URL
 * attribute (href, src, action, formaction, poster): at its start only a value beginning with
 * "/", "#", "?", "http:", "https:", "tel:" or "mailto:" is written (anything else becomes "#"),
 * after a literal start the value is percent-encoded. A placeholder is refused, with
 * file:line:col, where no escaping is safe: inside <script> or <style>, in an event handler
 * (on...) or style attribute, in an unquoted attribute value, in a tag or attribute name, or in
 * a comment. There is no way to write a value unescaped. */
#ifndef RB_WEB_TMPL_H
#define RB_WEB_TMPL_H

#include <jansson.h>
#include <stddef.h>

struct web_tmpl_set;

/* Compiles every *.html under dir and strings.json (an object {"en": {...}, "ur": {...}}).
 * Returns the set, or NULL with every error written to err (file:line:col: why). */
struct web_tmpl_set *web_tmpl_load(const char *dir, char *err, size_t errlen);
void web_tmpl_free(struct web_tmpl_set *s);

/* The words for key in lang, or NULL. Borrowed from the set. */
const char *web_tmpl_string(const struct web_tmpl_set *s, const char *lang, const char *key);

/* Renders template name with data in lang. Returns a new NUL-terminated string (caller frees)
 * with its length in *len, or NULL when there is no such template. */
char *web_tmpl_render(const struct web_tmpl_set *s, const char *name, const json_t *data,
                      const char *lang, size_t *len);

#endif
