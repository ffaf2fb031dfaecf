/* The serial console: a static table of commands (Zephyr shell style) over
 * a transport (UART on a device, stdio on the host) so tests can drive it
 * directly.  Every command prints either text or, in JSON mode, exactly one
 * JSON object on one line. */
#ifndef SATCHEL_CONSOLE_H
#define SATCHEL_CONSOLE_H

#include <stddef.h>

#include "app.h"

typedef struct satchel_console_io {
    void (*write)(void *ctx, const char *buf, size_t len);
    void *ctx;
} satchel_console_io;

typedef struct satchel_console {
    satchel_app *app;
    satchel_console_io io;
    int json;
    const char *store_path; /* shown by status */
    const char *stack;      /* "posix" or "lwip" */
    char line[512];         /* output assembly */
    size_t line_len;
} satchel_console;

void satchel_console_init(satchel_console *con, satchel_app *app,
                          const satchel_console_io *io, int json);

/* Run one command line.  Returns 0 on success, or a negative satchel_err
 * after printing the error (text, or {"error":..} in JSON mode). */
int satchel_console_exec(satchel_console *con, const char *line);

/* Split a "CMD; CMD" script and run each; returns the first failure (all
 * commands run regardless). */
int satchel_console_run_script(satchel_console *con, const char *script);

#endif
