/* The firmware: configuration from satchel.cfg, the lwIP port over the
 * LAN9118, the store in satchel.db, and the console on UART0 with a line
 * editor.  Between commands the idle loop keeps the network stack running
 * and sleeps in WFI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include <board.h>
#include "board_hw.h"
#include "console.h"
#include "lan9118.h"
#include "mbedtls/platform.h"
#include "posix_shim.h"
#include "satchel/port_lwip.h"
#include "satchel/store.h"
#include "satchel/tls.h"
#include "semihost.h"

#define LINE_MAX_LEN SATCHEL_CONSOLE_LINE_MAX
#define PROMPT "satchel> "

static satchel_app app;
static satchel_heap_counter heap;
static satchel_console con;

static void tls_handshake_command(void);

/* mbedTLS's heap, counted: its peak is one of the board's figures. */
static size_t tls_now, tls_peak;

static void *tls_calloc(size_t n, size_t size)
{
    size_t total;
    uint8_t *p;
    if (size && n > (SIZE_MAX - 8) / size)
        return NULL;
    total = n * size;
    p = calloc(1, total + 8);
    if (!p)
        return NULL;
    memcpy(p, &total, sizeof total);
    tls_now += total;
    if (tls_now > tls_peak)
        tls_peak = tls_now;
    return p + 8;
}

static void tls_free(void *ptr)
{
    uint8_t *p = ptr;
    size_t total;
    if (!p)
        return;
    p -= 8;
    memcpy(&total, p, sizeof total);
    tls_now -= total;
    free(p);
}

static void con_write(void *ctx, const char *buf, size_t len)
{
    (void)ctx;
    uart_write(buf, len);
}

/* A whole host file, NUL-terminated, through semihosting; NULL when it
 * cannot be read.  The caller frees it. */
static char *read_file(const char *path, size_t *len_out)
{
    int h = sh_open(path, SH_MODE_RB);
    long len;
    char *buf;
    if (h < 0)
        return NULL;
    len = sh_flen(h);
    if (len < 0 || len > 256 * 1024 || !(buf = malloc((size_t)len + 1))) {
        sh_close(h);
        return NULL;
    }
    if (sh_read(h, buf, (size_t)len) != 0) {
        free(buf);
        sh_close(h);
        return NULL;
    }
    sh_close(h);
    buf[len] = '\0';
    if (len_out)
        *len_out = (size_t)len;
    return buf;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* satchel.cfg: one "name value" per line, the names of satchel-sim's long
 * options.  Returns 0, or -1 after printing what is wrong. */
static int load_config(void)
{
    char *text = read_file("satchel.cfg", NULL), *line, *next;
    int rc = 0;
    if (!text) {
        printf("config: no satchel.cfg in the working directory: offline only\n");
        return 0;
    }
    for (line = text; line && *line; line = next) {
        char *name, *value, *end;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        end = line + strlen(line);
        while (end > line && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (!*line || *line == '#')
            continue;
        name = line;
        value = name + strcspn(name, " \t");
        if (*value) {
            *value++ = '\0';
            value += strspn(value, " \t");
        }
        if (strcmp(name, "server") == 0) {
            char *colon = strrchr(value, ':');
            unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
            if (!colon || *end || port == 0 || port > 65535) {
                printf("config: server wants HOST:PORT\n");
                rc = -1;
                continue;
            }
            *colon = '\0';
            app.cfg.host = dup_str(value);
            app.cfg.port = (uint16_t)port;
        } else if (strcmp(name, "security") == 0) {
            if (strcmp(value, "tls") == 0)
                app.cfg.security = SATCHEL_SECURITY_TLS;
            else if (strcmp(value, "starttls") == 0)
                app.cfg.security = SATCHEL_SECURITY_STARTTLS;
            else if (strcmp(value, "none") == 0)
                app.cfg.security = SATCHEL_SECURITY_NONE;
            else {
                printf("config: security is tls, starttls or none\n");
                rc = -1;
            }
        } else if (strcmp(name, "ca") == 0) {
            app.cfg.ca_file = dup_str(value);
            app.cfg.ca_pem = read_file(value, NULL);
            if (!app.cfg.ca_pem)
                printf("config: cannot read CA file %s\n", value);
        } else if (strcmp(name, "user") == 0) {
            app.cfg.user = dup_str(value);
        } else if (strcmp(name, "password-file") == 0) {
            char *pw = read_file(value, NULL);
            size_t n;
            if (!pw) {
                printf("config: cannot read password file %s\n", value);
                rc = -1;
                continue;
            }
            n = strlen(pw);
            while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
                pw[--n] = '\0';
            app.cfg.password = pw;
        } else if (strcmp(name, "cache-max") == 0) {
            app.cfg.cache_max = strtoull(value, NULL, 10);
        } else if (strcmp(name, "timeout") == 0) {
            app.cfg.timeout_ms = (uint32_t)strtoul(value, NULL, 10);
        } else if (strcmp(name, "retries") == 0) {
            app.cfg.retries = (uint32_t)strtoul(value, NULL, 10);
        } else if (strcmp(name, "offline") == 0) {
            app.cfg.offline = !*value || strcmp(value, "0") != 0;
        } else if (strcmp(name, "fail-write") == 0) {
            /* Testing: fail the Nth storage write after boot. */
            shim_fail_write((uint32_t)strtoul(value, NULL, 10));
        } else {
            printf("config: unknown setting %s\n", name);
            rc = -1;
        }
    }
    free(text);
    return rc;
}

/* Commands of the board itself, before the shared table. */
static int board_command(const char *line)
{
    if (strcmp(line, "json on") == 0 || strcmp(line, "json off") == 0) {
        con.json = line[6] == 'n';
        printf(con.json ? "{\"json\":true}\n" : "json: off\n");
        return 1;
    }
    if (strcmp(line, "tls-handshake") == 0) {
        tls_handshake_command();
        return 1;
    }
    if (strcmp(line, "mem") == 0) {
        extern uint8_t __data_start__, __bss_end__;
        uint32_t in, out, err, ip, writes;
        uint64_t bytes;
        lan9118_stats(&in, &out, &err, &ip);
        shim_stats(&writes, &bytes);
        printf(con.json ? "{\"static\":%lu,\"heap_high_water\":%lu,\"stack_high_water\":%lu,"
                          "\"engine_heap_peak\":%lu,\"tls_heap_peak\":%lu,\"frames_in\":%lu,\"frames_out\":%lu,"
                          "\"rx_dropped\":%lu,\"ip\":\"%lu.%lu.%lu.%lu\",\"storage_writes\":%lu,"
                          "\"storage_bytes\":%lu,\"uptime_ms\":%lu}\n"
                        : "static:   %lu (data + bss)\nheap:     %lu (high-water)\nstack:    %lu "
                          "(high-water)\nengine:   %lu (peak)\ntls:      %lu (peak)\nframes:   %lu in, %lu "
                          "out, %lu dropped\nip:       %lu.%lu.%lu.%lu\nwrites:   %lu (%lu bytes)\n"
                          "uptime:   %lu ms\n",
               (unsigned long)(&__bss_end__ - &__data_start__),
               (unsigned long)board_heap_high_water(),
               (unsigned long)board_stack_high_water(), (unsigned long)heap.peak,
               (unsigned long)tls_peak,
               (unsigned long)in, (unsigned long)out, (unsigned long)err,
               (unsigned long)(ip >> 24), (unsigned long)(ip >> 16 & 255),
               (unsigned long)(ip >> 8 & 255), (unsigned long)(ip & 255),
               (unsigned long)writes, (unsigned long)bytes,
               (unsigned long)(board_now_us() / 1000u));
        return 1;
    }
    return 0;
}

/* tls-handshake: one full TLS handshake with the configured server, timed
 * (a diagnostic; no session is offered and none is kept). */
static void tls_handshake_command(void)
{
    satchel_tls_config tc = {app.cfg.ca_pem, app.cfg.host};
    satchel_tls *t = NULL;
    satchel_conn *c = NULL;
    uint64_t t0, t1 = 0;
    uint32_t timeout = app.cfg.timeout_ms ? app.cfg.timeout_ms : 30000u;
    int rc = SATCHEL_E_OFFLINE;
    const char *why = "no server configured";
    if (app.port && app.cfg.host) {
        why = "cannot connect";
        rc = app.port->open(app.port->ctx, app.cfg.host, app.cfg.port, timeout, &c);
    }
    if (rc == 0) {
        why = "cannot set up TLS";
        rc = satchel_tls_new(app.alloc, &tc, &t);
    }
    if (rc == 0) {
        t0 = board_now_us();
        rc = satchel_tls_handshake(t, app.port, c, timeout);
        t1 = board_now_us() - t0;
        why = satchel_tls_detail(t);
    }
    if (rc == 0)
        printf(con.json ? "{\"handshake_us\":%lu,\"version\":\"%s\",\"cipher\":\"%s\",\"ok\":true}\n"
                        : "handshake: %lu us, %s, %s\n",
               (unsigned long)t1, satchel_tls_version(t), satchel_tls_ciphersuite(t));
    else /* the reason may come from a certificate: the console escapes it */
        satchel_console_error(&con, rc, why);
    if (t) {
        if (rc == 0)
            satchel_tls_close(t);
        satchel_tls_free(t);
    }
    if (c)
        app.port->close(c);
}

/* Between commands: keep the session (the server's untagged data is fed
 * to the client as it comes) and the network stack (DHCP, TCP timers)
 * running, sleeping in WFI, for at most 20 ms, so that input is seen. */
static void idle(void)
{
    if (app.client && (app.cfg.offline || !app.conn || satchel_app_step(&app, 20) <= 0)) {
        /* offline now, or the server closed the session: end it; the next
         * command opens a new one */
        satchel_app_disconnect(&app);
        return;
    }
    if (app.client)
        return;
    if (app.port && app.port->sleep_ms)
        app.port->sleep_ms(app.port->ctx, 20);
    else
        board_idle();
}

int main(void)
{
    char line[LINE_MAX_LEN + 1];
    size_t len = 0;
    int overlong = 0, rc = 0, tries;

    uart_init();
    clock_init();
    mbedtls_platform_set_calloc_free(tls_calloc, tls_free);
    printf("\nsatchel firmware on " BOARD_NAME "\n");
    memset(&app, 0, sizeof app);
    app.cfg.security = SATCHEL_SECURITY_TLS;
    app.cfg.retries = 4;
    /* A device that stays online keeps one session between commands. */
    app.cfg.keep_session = 1;
    if (load_config() < 0)
        printf("config: errors above; continuing\n");
    satchel_heap_counter_init(&heap, NULL);
    app.heap = &heap;
    app.alloc = &heap.self;
    app.port = satchel_port_lwip_start(lan9118_link());
    if (!app.port)
        printf("network: the LAN9118 did not start: offline only\n");
    /* A failed storage write during the open (the flash said no once)
     * leaves the file as LMDB left it: open again before giving up. */
    for (tries = 0; tries < 3; tries++) {
        rc = satchel_store_open(app.alloc, "satchel.db", 0, &app.store);
        if (rc == 0)
            break;
        printf("store: cannot open satchel.db: %s\n", satchel_strerror(rc));
    }
    if (rc < 0) {
        for (;;)
            board_idle();
    }
    satchel_store_set_cache_budget(app.store, app.cfg.cache_max);
    {
        satchel_console_io io = {con_write, NULL};
        satchel_console_init(&con, &app, &io, 0);
    }
    printf("ready: %lu ms after reset\n", (unsigned long)(board_now_us() / 1000u));
    con.store_path = "satchel.db";
    con.stack = "lwip";
    uart_write(PROMPT, sizeof PROMPT - 1);
    for (;;) {
        int c = uart_getc();
        if (c < 0) {
            idle();
            continue;
        }
        if (c == '\r' || c == '\n') {
            uart_write("\n", 1);
            if (overlong) {
                satchel_console_reject_line(&con);
            } else if (len > 0) {
                line[len] = '\0';
                if (!board_command(line))
                    satchel_console_exec(&con, line);
            }
            len = 0;
            overlong = 0;
            uart_write(PROMPT, sizeof PROMPT - 1);
        } else if (c == 0x08 || c == 0x7f) {
            if (len > 0 && !overlong) {
                len--;
                uart_write("\b \b", 3);
            }
        } else if (c >= 0x20 || c == '\t') {
            if (len >= LINE_MAX_LEN) {
                overlong = 1;
                continue;
            }
            line[len++] = (char)c;
            uart_putc((char)c);
        }
    }
}
