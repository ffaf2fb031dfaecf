/* Inside the console: the command table entry, the output writer and its
 * key-value emitter, and helpers the command groups share.  Not a public
 * header: only firmware/console*.c include it. */
#ifndef SATCHEL_CONSOLE_INT_H
#define SATCHEL_CONSOLE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "console.h"
#include "satchel/ascii.h"
#include "satchel/store.h"

typedef int (*satchel_console_fn)(satchel_console *con, int argc, char **argv);

/* One command.  Arguments are counted without the command's own name. */
typedef struct satchel_console_cmd {
    const char *name;
    const char *usage;
    const char *help;
    int min_args, max_args;
    satchel_console_fn fn;
} satchel_console_cmd;

/* Command groups, each a table ending in an all-NULL entry, each in its own
 * file.  console.c lists them in the order `help` shows. */
extern const satchel_console_cmd satchel_console_cmds_session[]; /* console_session.c */
extern const satchel_console_cmd satchel_console_cmds_mail[];    /* console_mail.c */
extern const satchel_console_cmd satchel_console_cmds_changes[]; /* console_changes.c */
extern const satchel_console_cmd satchel_console_cmds_store[];   /* console_store.c */

/* The groups in order, ending in NULL (help walks it). */
extern const satchel_console_cmd *const satchel_console_groups[];

/* ---- Output (console_out.c) ----
 *
 * Every command prints through the key-value emitter, which writes either
 * the JSON object (one line) or the text form, so no command builds both.
 * A field has a JSON key and a text format: `fmt` is printf-like with one
 * conversion, %s or %u, taking flags '-', a width and a precision (counted
 * in characters), and may hold literal text and newlines around it.  A NULL
 * key shows the field in text only; a NULL fmt in JSON only.
 *
 * Strings from a server or a user are always escaped: JSON escapes, and in
 * text, control characters (C0, DEL, C1) and bytes that are not UTF-8 show
 * as \xNN, so nothing a server sends can drive a terminal. */

void con_kv_begin(satchel_console *con);            /* the command's object */
int con_kv_end(satchel_console *con);               /* close it; returns 0 */
void con_kv_obj(satchel_console *con, const char *key);  /* nested object */
void con_kv_obj_end(satchel_console *con);
void con_kv_list(satchel_console *con, const char *key); /* array */
void con_kv_list_end(satchel_console *con);
void con_kv_item(satchel_console *con);             /* object in an array */
void con_kv_item_end(satchel_console *con);         /* text: flushes */
void con_flush(satchel_console *con);               /* write what is buffered */

void con_kv_str(satchel_console *con, const char *key, const char *s,
                const char *fmt);
void con_kv_strn(satchel_console *con, const char *key, const char *s,
                 size_t n, const char *fmt);
void con_kv_u64(satchel_console *con, const char *key, uint64_t v,
                const char *fmt);
void con_kv_i64(satchel_console *con, const char *key, int64_t v,
                const char *fmt);
/* Text shows `fmt` with "yes"/"no" for %s, or nothing when fmt is NULL. */
void con_kv_bool(satchel_console *con, const char *key, int v, const char *fmt);
void con_kv_null(satchel_console *con, const char *key);
/* System flags and keywords: a JSON array; text "SAFDd" letters then
 * keywords per fmt (%s gets the letters). */
void con_kv_flags(satchel_console *con, const char *key, uint32_t flags,
                  const char *keywords, const char *fmt);

/* A long string streamed in pieces (a body): JSON "key":"...", text the
 * bytes with control characters other than newline and tab escaped.  With
 * raw set and text mode on something that is not a terminal, the bytes go
 * out unchanged (for a pipe or a file). */
void con_kv_stream_begin(satchel_console *con, const char *key);
void con_kv_stream(satchel_console *con, const char *data, size_t n, int raw);
void con_kv_stream_end(satchel_console *con);

/* Bytes that are not text, as one base64 string (RFC 4648) in JSON, streamed
 * in pieces.  JSON mode only. */
void con_kv_b64_begin(satchel_console *con, const char *key);
void con_kv_b64(satchel_console *con, const uint8_t *data, size_t n);
void con_kv_b64_end(satchel_console *con);

/* A failure: drops what this command buffered, ends a JSON line already
 * started, and prints {"ok":false,"error":..,"code":rc} or "error: ...".
 * Returns rc. */
int con_error(satchel_console *con, int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- Shared helpers (console.c) ---- */

/* A decimal number without sign.  Returns 0 or -1. */
int con_parse_u32(const char *s, uint32_t *out);
/* Read a folder by name (exact, or INBOX in any case); prints the error. */
int con_get_folder(satchel_console *con, const char *name, satchel_folder *f);

#endif
