/* The serial console: a static table of commands (Zephyr shell style) over
 * a transport (UART on a device, stdio on the host) so tests can drive it
 * directly.  Every command prints either text or, in JSON mode, exactly one
 * JSON object on one line. */
#ifndef SATCHEL_CONSOLE_H
#define SATCHEL_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"

typedef struct satchel_console_io {
    void (*write)(void *ctx, const char *buf, size_t len);
    void *ctx;
} satchel_console_io;

/* Files, for `body ... --out FILE`, on a console that has them (see
 * satchel_console_set_files): open path for writing (NULL on failure),
 * write all of buf (0, or -1 on failure), close (0, or -1 when the data may
 * not all be there). */
typedef struct satchel_console_files {
    void *(*open)(void *ctx, const char *path);
    int (*write)(void *file, const void *buf, size_t len);
    int (*close)(void *file);
    void *ctx;
} satchel_console_files;

typedef struct satchel_console {
    satchel_app *app;
    satchel_console_io io;
    int json;
    const char *store_path; /* shown by status */
    const char *stack;      /* "posix" or "lwip" */
    int tty;                /* output is a terminal: never write raw bytes */
    char line[512];         /* output assembly */
    size_t line_len;
    /* The key-value emitter's state (console_out.c). */
    unsigned kv_depth;      /* JSON nesting */
    uint32_t kv_more;       /* bit d: level d already has a member */
    uint32_t kv_array;      /* bit d: level d is an array */
    int kv_wrote;           /* part of this command's output is written */
    uint64_t damaged_mark;  /* store's damaged-record count before a command */
    const satchel_console_files *files; /* NULL: --out is refused */
    char inbox[6];          /* INBOX as the store spells it, for arguments */
    uint8_t b64_carry[3];   /* con_kv_b64: bytes waiting for a whole group */
    uint8_t b64_n;
} satchel_console;

void satchel_console_init(satchel_console *con, satchel_app *app,
                          const satchel_console_io *io, int json);

/* Let `body --out FILE` write files through f (which must outlive con). */
void satchel_console_set_files(satchel_console *con, const satchel_console_files *f);

/* The longest command line, without its end: longer lines are refused
 * whole, never cut into two commands.  It fits a command naming two
 * folders of SATCHEL_OPT_MAX_FOLDER_NAME bytes, quoted (a move); a board
 * sets its own in satchel_board_opts.h. */
#ifndef SATCHEL_CONSOLE_LINE_MAX
#define SATCHEL_CONSOLE_LINE_MAX (4u * SATCHEL_OPT_MAX_FOLDER_NAME - 1u)
#endif

/* Run one command line (a trailing CR, LF or blanks are ignored).  Returns
 * 0 on success, or a negative satchel_err after printing the error (text,
 * or {"ok":false,"error":..,"code":N} in JSON mode). */
int satchel_console_exec(satchel_console *con, const char *line);

/* Line assembly for a byte stream (stdin, a UART).  A line longer than
 * SATCHEL_CONSOLE_LINE_MAX is dropped whole, up to its end: no part of it
 * ever runs as a command. */
typedef struct satchel_console_reader {
    char buf[SATCHEL_CONSOLE_LINE_MAX + 2]; /* the line, a CR, a NUL */
    size_t len;
    int overlong;   /* the current line passed the limit */
} satchel_console_reader;

/* Consume input from data[0..n); *used gets the bytes taken.  Returns 1
 * with *line set to a complete line (NUL-terminated, without its CR LF,
 * valid until the next call), 0 when all input was taken without ending a
 * line, or SATCHEL_E_RANGE when a line over the limit ended (it was
 * dropped).  At end of input, call with n = 0 to get a last line that had
 * no line end (1), or 0. */
int satchel_console_reader_feed(satchel_console_reader *r, const char *data,
                                size_t n, size_t *used, const char **line);

/* Report a line the reader dropped for its length (an error, like any
 * failed command).  Returns SATCHEL_E_RANGE. */
int satchel_console_reject_line(satchel_console *con);

/* Report a failure of a command run outside the table (a board's own):
 * "error: TEXT" or {"ok":false,"error":"TEXT","code":rc}, TEXT escaped as
 * every command's output is.  Returns rc. */
int satchel_console_error(satchel_console *con, int rc, const char *text);

/* True when line is `quit` or `exit`, with any blanks around it. */
int satchel_console_is_quit(const char *line);

/* Split a "CMD; CMD" script and run each; returns the first failure (all
 * commands run regardless). */
int satchel_console_run_script(satchel_console *con, const char *script);

#endif
