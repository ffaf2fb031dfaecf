/* satchel-sim: the host simulator.  The same app and console as the
 * firmware, over the POSIX port, with stdio as the console transport. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "console.h"
#include "satchel/port.h"
#include "satchel/port_store.h"
#ifdef SATCHEL_HAVE_LWIP
#include "slirp_link.h"
#endif

static void print_problem(void *ctx, const char *what)
{
    (void)ctx;
    printf("problem: %s\n", what);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: satchel-sim --db DIR [--server HOST:PORT] [--security tls|starttls|none]\n"
            "                   [--ca FILE] [--user NAME] [--password-file FILE]\n"
            "                   [--offline] [--json] [--fetch-window N] [--preview newest|on|off]\n"
            "                   [--timeout 30s] [--retries N]\n"
            "                   [--cache-max SIZE] [--map-size SIZE] [--sync-wait 10s]\n"
            "                   [--no-session-cache] [--backoff MS] [--salvage NEWDIR]\n"
            "                   [--prefetch N --prefetch-folders A,B\n"
            "                    --prefetch-max-size SIZE]\n"
            "                   [--stack posix|lwip] [--link SPEC]\n"
            "                   [-c \"CMD; CMD; ...\"]\n"
            "Without -c, reads commands from standard input (try 'help').\n");
}

/* Numeric options: plain digits only (no sign, no blanks), within max. */
static int parse_count(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        goto bad;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    fprintf(stderr, "satchel-sim: --%s wants a whole number from 0 to %llu, not '%s'\n",
            opt, (unsigned long long)max, s);
    return -1;
}

/* A size: digits with an optional k, M or G (powers of 1024) or B. */
static int parse_size(const char *opt, const char *s, uint64_t *out)
{
    char num[32];
    size_t n = strspn(s, "0123456789");
    uint64_t v, mult = 1;
    const char *suffix = s + n;
    if (n == 0 || n >= sizeof num)
        goto bad;
    if (strcmp(suffix, "") == 0 || strcmp(suffix, "B") == 0)
        mult = 1;
    else if (strcmp(suffix, "k") == 0 || strcmp(suffix, "K") == 0 ||
             strcmp(suffix, "KB") == 0 || strcmp(suffix, "KiB") == 0)
        mult = 1024;
    else if (strcmp(suffix, "M") == 0 || strcmp(suffix, "MB") == 0 ||
             strcmp(suffix, "MiB") == 0)
        mult = 1024 * 1024;
    else if (strcmp(suffix, "G") == 0 || strcmp(suffix, "GB") == 0 ||
             strcmp(suffix, "GiB") == 0)
        mult = 1024ull * 1024 * 1024;
    else
        goto bad;
    memcpy(num, s, n);
    num[n] = '\0';
    if (parse_count(opt, num, UINT64_MAX / mult, &v) < 0)
        return -1;
    *out = v * mult;
    return 0;
bad:
    fprintf(stderr, "satchel-sim: --%s wants a size such as 65536, 64k, 10M or 2G, "
                    "not '%s'\n", opt, s);
    return -1;
}

/* A duration: digits with ms, s, m or h; bare digits are milliseconds. */
static int parse_duration_ms(const char *opt, const char *s, uint32_t *out)
{
    char num[32];
    size_t n = strspn(s, "0123456789");
    uint64_t v, mult;
    const char *suffix = s + n;
    if (n == 0 || n >= sizeof num)
        goto bad;
    if (strcmp(suffix, "") == 0 || strcmp(suffix, "ms") == 0)
        mult = 1;
    else if (strcmp(suffix, "s") == 0)
        mult = 1000;
    else if (strcmp(suffix, "m") == 0 || strcmp(suffix, "min") == 0)
        mult = 60000;
    else if (strcmp(suffix, "h") == 0)
        mult = 3600000;
    else
        goto bad;
    memcpy(num, s, n);
    num[n] = '\0';
    if (parse_count(opt, num, UINT32_MAX / mult, &v) < 0)
        return -1;
    if (v == 0)
        goto bad;
    *out = (uint32_t)(v * mult);
    return 0;
bad:
    fprintf(stderr, "satchel-sim: --%s wants a duration above zero such as 500ms, 30s, "
                    "5m or 1h (bare numbers are milliseconds), not '%s'\n", opt, s);
    return -1;
}

static int parse_u32_opt(const char *opt, const char *s, uint32_t max, uint32_t *out)
{
    uint64_t v;
    if (parse_count(opt, s, max, &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static void out_write(void *ctx, const char *buf, size_t len)
{
    fwrite(buf, 1, len, (FILE *)ctx);
    fflush((FILE *)ctx);
}

static void *file_open(void *ctx, const char *path)
{
    (void)ctx;
    return fopen(path, "wb");
}

static int file_write(void *file, const void *buf, size_t len)
{
    return fwrite(buf, 1, len, (FILE *)file) == len ? 0 : -1;
}

static int file_close(void *file)
{
    return fclose((FILE *)file) == 0 ? 0 : -1;
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    size_t i, n = strlen(path);
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return -1;
            tmp[i] = c;
        }
    }
    return 0;
}

/* The password never comes from the command line (visible in ps); its file
 * must not be readable by others. */
static char *read_password(const char *path)
{
    struct stat st;
    FILE *f;
    char *buf;
    size_t n;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "satchel-sim: cannot read password file %s: %s\n", path,
                strerror(errno));
        return NULL;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        fprintf(stderr,
                "satchel-sim: refusing password file %s: readable by others "
                "(chmod 600 it)\n", path);
        return NULL;
    }
    if (st.st_mode & S_IRGRP)
        fprintf(stderr, "satchel-sim: warning: password file %s is group-readable\n",
                path);
    f = fopen(path, "r");
    if (!f)
        return NULL;
    buf = calloc(1, 257);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, 256, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

/* A whole text file, NUL-terminated (a CA bundle), or NULL when it cannot
 * be read (the TLS set-up then reports the CA file by name). */
static char *read_text_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL, *grown;
    size_t len = 0, cap = 0, n;
    if (!f)
        return NULL;
    do {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            grown = realloc(buf, cap + 1);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},
        {"server", required_argument, 0, 's'},
        {"security", required_argument, 0, 'S'},
        {"ca", required_argument, 0, 'C'},
        {"user", required_argument, 0, 'u'},
        {"password-file", required_argument, 0, 'p'},
        {"offline", no_argument, 0, 'o'},
        {"json", no_argument, 0, 'j'},
        {"fetch-window", required_argument, 0, 'w'},
        {"preview", required_argument, 0, 'V'},
        {"timeout", required_argument, 0, 't'},
        {"disable-caps", required_argument, 0, 'D'},
        {"cache-max", required_argument, 0, 'M'},
        {"map-size", required_argument, 0, 'A'},
        {"sync-wait", required_argument, 0, 'W'},
        {"salvage", required_argument, 0, 'X'},
        {"no-session-cache", no_argument, 0, 'K'},
        {"retries", required_argument, 0, 'R'},
        {"backoff", required_argument, 0, 'B'},
        {"prefetch", required_argument, 0, 'P'},
        {"prefetch-max-size", required_argument, 0, 'Z'},
        {"prefetch-folders", required_argument, 0, 'F'},
        {"stack", required_argument, 0, 'N'},
        {"link", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    static satchel_app app;
    static satchel_heap_counter heap;
    satchel_console con;
    satchel_console_io io = {out_write, NULL};
    static const satchel_console_files files = {file_open, file_write, file_close, NULL};
    const char *db = NULL, *script = NULL, *pwfile = NULL;
    const char *stack = "posix", *link_spec = NULL;
    char *host = NULL, *password = NULL;
    int json = 0, opt, rc = 0;
    uint64_t map_size = 0;
    const char *salvage_to = NULL;
    satchel_store_config scfg;
    char serr[512];

    memset(&app, 0, sizeof app);
    app.cfg.security = SATCHEL_SECURITY_TLS;
    app.cfg.retries = 4;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': db = optarg; break;
        case 's': {
            char *colon = strrchr(optarg, ':');
            unsigned long port;
            char *end;
            if (!colon || colon == optarg) {
                fprintf(stderr, "satchel-sim: --server wants HOST:PORT\n");
                return 2;
            }
            port = strtoul(colon + 1, &end, 10);
            if (*end || port == 0 || port > 65535) {
                fprintf(stderr, "satchel-sim: bad port in --server\n");
                return 2;
            }
            host = strndup(optarg, (size_t)(colon - optarg));
            /* [::1]:993 */
            if (host[0] == '[' && host[strlen(host) - 1] == ']') {
                memmove(host, host + 1, strlen(host));
                host[strlen(host) - 1] = '\0';
            }
            app.cfg.host = host;
            app.cfg.port = (uint16_t)port;
            break;
        }
        case 'S':
            if (strcmp(optarg, "tls") == 0)
                app.cfg.security = SATCHEL_SECURITY_TLS;
            else if (strcmp(optarg, "starttls") == 0)
                app.cfg.security = SATCHEL_SECURITY_STARTTLS;
            else if (strcmp(optarg, "none") == 0)
                app.cfg.security = SATCHEL_SECURITY_NONE;
            else {
                fprintf(stderr, "satchel-sim: --security is tls, starttls or none\n");
                return 2;
            }
            break;
        case 'C': app.cfg.ca_file = optarg; break;
        case 'u': app.cfg.user = optarg; break;
        case 'p': pwfile = optarg; break;
        case 'o': app.cfg.offline = 1; break;
        case 'j': json = 1; break;
        case 'w':
            if (parse_u32_opt("fetch-window", optarg, 100000, &app.cfg.fetch_window) < 0)
                return 2;
            break;
        case 'V':
            if (strcmp(optarg, "newest") == 0)
                app.cfg.preview = SATCHEL_PREVIEW_NEWEST;
            else if (strcmp(optarg, "on") == 0)
                app.cfg.preview = SATCHEL_PREVIEW_ON;
            else if (strcmp(optarg, "off") == 0)
                app.cfg.preview = SATCHEL_PREVIEW_OFF;
            else {
                fprintf(stderr, "satchel-sim: --preview must be on, newest or off\n");
                return 2;
            }
            break;
        case 't':
            if (parse_duration_ms("timeout", optarg, &app.cfg.timeout_ms) < 0)
                return 2;
            break;
        case 'D': {
            char *end;
            unsigned long v;
            errno = 0;
            v = strtoul(optarg, &end, 0);
            if (optarg[0] < '0' || optarg[0] > '9' || *end || errno || v > UINT32_MAX) {
                fprintf(stderr, "satchel-sim: --disable-caps wants a capability mask "
                                "(e.g. 0x4), not '%s'\n", optarg);
                return 2;
            }
            app.cfg.disable_caps = (uint32_t)v;
            break;
        }
        case 'M':
            if (parse_size("cache-max", optarg, &app.cfg.cache_max) < 0)
                return 2;
            break;
        case 'A':
            if (parse_size("map-size", optarg, &map_size) < 0)
                return 2;
            break;
        case 'K': app.cfg.no_session_cache = 1; break;
        case 'X': salvage_to = optarg; break;
        case 'W':
            if (parse_duration_ms("sync-wait", optarg, &app.cfg.sync_wait_ms) < 0)
                return 2;
            break;
        case 'B':
            if (parse_u32_opt("backoff", optarg, 30000, &app.cfg.backoff_ms) < 0)
                return 2;
            break;
        case 'R':
            if (parse_u32_opt("retries", optarg, 1000, &app.cfg.retries) < 0)
                return 2;
            break;
        case 'P':
            if (parse_u32_opt("prefetch", optarg, 100000, &app.cfg.prefetch_count) < 0)
                return 2;
            break;
        case 'Z':
            if (parse_size("prefetch-max-size", optarg, &app.cfg.prefetch_max_size) < 0)
                return 2;
            break;
        case 'F': app.cfg.prefetch_folders = optarg; break;
        case 'c': script = optarg; break;
        case 'N': stack = optarg; break;
        case 'L': link_spec = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!db || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (pwfile) {
        password = read_password(pwfile);
        if (!password)
            return 2;
        app.cfg.password = password;
    }
    /* TLS takes the CA as PEM text: loading it is the host's job. */
    app.cfg.ca_pem = read_text_file(app.cfg.ca_file ? app.cfg.ca_file
                                                    : "/etc/ssl/certs/ca-certificates.crt");
    if (!*db) {
        fprintf(stderr, "satchel-sim: --db needs a directory (it was empty)\n");
        return 2;
    }
    if (mkdirs(db) < 0) {
        fprintf(stderr, "satchel-sim: cannot create %s: %s\n", db, strerror(errno));
        return 2;
    }
    satchel_heap_counter_init(&heap, NULL);
    app.heap = &heap;
    app.alloc = &heap.self;
    if (strcmp(stack, "posix") == 0) {
        if (link_spec) {
            fprintf(stderr, "satchel-sim: --link needs --stack lwip\n");
            return 2;
        }
        app.port = satchel_port_posix();
    } else if (strcmp(stack, "lwip") == 0) {
#ifdef SATCHEL_HAVE_LWIP
        satchel_link_config lc;
        if (satchel_link_parse(link_spec ? link_spec : "", &lc) < 0) {
            fprintf(stderr, "satchel-sim: bad --link %s (e.g. rtt=300ms,rate=64kbit,"
                            "loss=1%%,cut-after=200KB,seed=42)\n", link_spec);
            return 2;
        }
        app.port = satchel_port_lwip(&lc);
        if (!app.port) {
            fprintf(stderr, "satchel-sim: cannot start the lwip stack\n");
            return 1;
        }
#else
        fprintf(stderr, "satchel-sim: built without the lwip stack "
                        "(scripts/fetch-lwip, then rebuild)\n");
        return 2;
#endif
    } else {
        fprintf(stderr, "satchel-sim: --stack is posix or lwip\n");
        return 2;
    }
    memset(&scfg, 0, sizeof scfg);
    scfg.alloc = app.alloc;
    scfg.map_size = map_size;
    scfg.fs = satchel_store_fs_posix();
    scfg.err = serr;
    scfg.err_cap = sizeof serr;
    if (salvage_to) {
        /* The store is read page by page, never opened: this is for a store
         * that does not open. */
        satchel_store_report r;
        rc = satchel_store_salvage_file(&scfg, db, salvage_to, print_problem, NULL, &r);
        printf("salvage: %llu records read, %llu damaged, %llu problems, %llu records "
               "copied to %s%s%s\n",
               (unsigned long long)r.records, (unsigned long long)r.damaged,
               (unsigned long long)r.problems, (unsigned long long)r.copied, salvage_to,
               rc < 0 ? "; error: " : "", rc < 0 ? satchel_strerror(rc) : "");
        return rc < 0 ? 1 : 0;
    }
    rc = satchel_store_open_config(&scfg, db, &app.store);
    if (rc < 0) {
        fprintf(stderr, "satchel-sim: cannot open store: %s (%s)\n",
                serr[0] ? serr : db, satchel_strerror(rc));
        if (rc == SATCHEL_E_DAMAGED)
            fprintf(stderr, "satchel-sim: --salvage NEWDIR copies what is readable "
                            "(the queue of offline changes first) into a new store\n");
        return 1;
    }
    if (satchel_store_notice(app.store)[0])
        fprintf(stderr, "satchel-sim: warning: %s\n", satchel_store_notice(app.store));
    satchel_store_set_cache_budget(app.store, app.cfg.cache_max);
    if (app.cfg.prefetch_count && !app.cfg.prefetch_folders)
        app.cfg.prefetch_folders = "INBOX";
    if (app.cfg.prefetch_count && !app.cfg.prefetch_max_size)
        app.cfg.prefetch_max_size = 64 * 1024;
    io.ctx = stdout;
    satchel_console_init(&con, &app, &io, json);
    con.store_path = db;
    con.stack = app.port->name;
    con.tty = isatty(1);
    satchel_console_set_files(&con, &files);
    if (script) {
        rc = satchel_console_run_script(&con, script);
    } else {
        static satchel_console_reader reader;
        char chunk[4096];
        int tty = isatty(0), quit = 0;
        while (!quit) {
            ssize_t got;
            size_t at = 0;
            if (tty) {
                fputs("satchel> ", stdout);
                fflush(stdout);
            }
            got = read(0, chunk, sizeof chunk);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                break;
            /* got == 0 (end of input) flushes a last line without its end. */
            do {
                const char *line;
                size_t used;
                int r = satchel_console_reader_feed(&reader, chunk + at,
                                                    (size_t)got - at, &used, &line);
                at += used;
                if (r == SATCHEL_E_RANGE) {
                    satchel_console_reject_line(&con);
                    rc = -1;
                } else if (r == 1) {
                    if (satchel_console_is_quit(line)) {
                        quit = 1;
                        break;
                    }
                    if (satchel_console_exec(&con, line) < 0 && rc == 0)
                        rc = -1;
                } else {
                    break;
                }
            } while (at < (size_t)got || got == 0);
            if (got == 0)
                break;
        }
    }
    satchel_store_close(app.store);
    if (password) {
        volatile char *p = password;
        while (*p)
            *p++ = 0;
        free(password);
    }
    free(host);
    free((char *)app.cfg.ca_pem);
    return rc < 0 ? 1 : 0;
}
