/* A growing byte buffer, always NUL-terminated after its n bytes, and the escapers that write
 * into it. Out of memory aborts (as the core's rb_fatal does). */
#ifndef RB_WEB_BUF_H
#define RB_WEB_BUF_H

#include <stddef.h>

struct web_buf {
    char *p; /* owned; NULL until the first add */
    size_t n, cap;
};

void web_buf_add(struct web_buf *b, const void *s, size_t n);
/* The whole file at path (NUL-terminated; its length in *len), or NULL when it cannot be read
 * or is over max bytes. Returns a new buffer; caller frees. */
char *web_buf_file(const char *path, size_t max, size_t *len);
void web_buf_str(struct web_buf *b, const char *s);
/* s with & < > " ' written as character references: safe in element text and in a quoted
 * attribute value. */
void web_buf_html(struct web_buf *b, const char *s);
/* s percent-encoded except A-Z a-z 0-9 - . _ ~ (a URL's path segment or query value). */
void web_buf_urlenc(struct web_buf *b, const char *s);

#endif
