/* Console commands.  Output is assembled in a small line buffer and written
 * through the transport as it fills, so a long listing costs no memory. */
#include "console.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "satchel/body.h"
#include "satchel/ops.h"
#include "satchel/mime.h"

#define MAX_ARGS 8

typedef int (*cmd_fn)(satchel_console *con, int argc, char **argv);

struct cmd {
    const char *name;
    const char *usage;
    const char *help;
    int min_args, max_args; /* not counting the command itself */
    cmd_fn fn;
};

/* ---------- output ---------- */

static void flush(satchel_console *con)
{
    if (con->line_len) {
        con->io.write(con->io.ctx, con->line, con->line_len);
        con->line_len = 0;
    }
}

static void put(satchel_console *con, const char *s, size_t n)
{
    while (n > 0) {
        size_t room = sizeof con->line - con->line_len, k;
        if (room == 0) {
            flush(con);
            continue;
        }
        k = n < room ? n : room;
        memcpy(con->line + con->line_len, s, k);
        con->line_len += k;
        s += k;
        n -= k;
    }
}

static void puts_(satchel_console *con, const char *s)
{
    put(con, s, strlen(s));
}

static void printf_(satchel_console *con, const char *fmt, ...)
{
    char buf[256];
    int n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    put(con, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Length of the valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1fu;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0fu;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07u;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* JSON string content: escapes, and U+FFFD for bytes that are not UTF-8,
 * so the output is always valid JSON whatever a server sent.  A counted
 * piece, which may hold NULs. */
static void jstr_n(satchel_console *con, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        size_t k;
        if (*p == '"' || *p == '\\') {
            put(con, "\\", 1);
            put(con, (const char *)p, 1);
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            printf_(con, "\\u%04x", *p);
            p++;
        } else if ((k = utf8_len(p, (size_t)(end - p))) == 0) {
            puts_(con, "\xef\xbf\xbd");
            p++;
        } else {
            put(con, (const char *)p, k);
            p += k;
        }
    }
}

/* A quoted JSON string. */
static void jstr(satchel_console *con, const char *s)
{
    put(con, "\"", 1);
    jstr_n(con, s, strlen(s));
    put(con, "\"", 1);
}

static void end_line(satchel_console *con)
{
    put(con, "\n", 1);
    flush(con);
}

/* End a command's output: the JSON object's closing text, or (text mode)
 * just what is still buffered. */
static int close_out(satchel_console *con, const char *json_tail)
{
    if (con->json) {
        puts_(con, json_tail);
        end_line(con);
    } else {
        flush(con);
    }
    return 0;
}

static int error(satchel_console *con, int rc, const char *fmt, ...)
{
    char buf[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (con->json) {
        puts_(con, "{\"ok\":false,\"error\":");
        jstr(con, buf);
        printf_(con, ",\"code\":%d}", rc);
    } else {
        puts_(con, "error: ");
        puts_(con, buf);
    }
    end_line(con);
    return rc;
}

static void flags_json(satchel_console *con, uint32_t flags, const char *kw)
{
    static const char *const names[] = {"\\Seen", "\\Answered", "\\Flagged",
                                        "\\Deleted", "\\Draft"};
    int first = 1;
    size_t i;
    put(con, "[", 1);
    for (i = 0; i < 5; i++) {
        if (flags & (1u << i)) {
            if (!first)
                put(con, ",", 1);
            jstr(con, names[i]);
            first = 0;
        }
    }
    while (*kw) {
        char word[128];
        size_t n = strcspn(kw, " ");
        if (n && n < sizeof word) {
            memcpy(word, kw, n);
            word[n] = '\0';
            if (!first)
                put(con, ",", 1);
            jstr(con, word);
            first = 0;
        }
        kw += n;
        while (*kw == ' ')
            kw++;
    }
    put(con, "]", 1);
}

static void flags_text(satchel_console *con, uint32_t flags)
{
    char f[6] = "-----";
    if (flags & SATCHEL_FLAG_SEEN) f[0] = 'S';
    if (flags & SATCHEL_FLAG_ANSWERED) f[1] = 'A';
    if (flags & SATCHEL_FLAG_FLAGGED) f[2] = 'F';
    if (flags & SATCHEL_FLAG_DELETED) f[3] = 'D';
    if (flags & SATCHEL_FLAG_DRAFT) f[4] = 'd';
    puts_(con, f);
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;
    if (!*s || *s == '-')
        return -1;
    v = strtoul(s, &end, 10);
    if (*end || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int get_folder(satchel_console *con, const char *name, satchel_folder *f)
{
    int rc = satchel_store_folder_get(con->app->store, NULL, name, f);
    if (rc == SATCHEL_E_NOTFOUND)
        return error(con, rc, "no such folder: %s (run sync first?)", name);
    if (rc < 0)
        return error(con, rc, "cannot read folder %s: %s", name,
                     satchel_strerror(rc));
    return 0;
}

/* ---------- commands ---------- */

#define N_COMMANDS 18 /* the table below, with its terminator */
static const struct cmd commands[N_COMMANDS];

static int cmd_help(satchel_console *con, int argc, char **argv)
{
    const struct cmd *c;
    (void)argc;
    (void)argv;
    if (con->json)
        puts_(con, "{\"commands\":[");
    for (c = commands; c->name; c++) {
        if (con->json) {
            if (c != commands)
                put(con, ",", 1);
            puts_(con, "{\"name\":");
            jstr(con, c->name);
            puts_(con, ",\"usage\":");
            jstr(con, c->usage);
            puts_(con, ",\"help\":");
            jstr(con, c->help);
            put(con, "}", 1);
        } else {
            printf_(con, "  %-28s %s\n", c->usage, c->help);
        }
    }
    return close_out(con, "]}");
}

static int cmd_status(satchel_console *con, int argc, char **argv)
{
    satchel_app *app = con->app;
    satchel_store_stats st;
    static const char *const sec[] = {"tls", "starttls", "none"};
    int online = !app->cfg.offline && app->cfg.host;
    (void)argc;
    (void)argv;
    satchel_store_stats_get(app->store, &st);
    if (con->json) {
        printf_(con, "{\"online\":%s,\"server\":", online ? "true" : "false");
        if (app->cfg.host) {
            char hp[300];
            snprintf(hp, sizeof hp, "%s:%u", app->cfg.host, (unsigned)app->cfg.port);
            jstr(con, hp);
        } else {
            puts_(con, "null");
        }
        printf_(con, ",\"security\":\"%s\",\"user\":", sec[app->cfg.security % 3]);
        if (app->cfg.user)
            jstr(con, app->cfg.user);
        else
            puts_(con, "null");
        puts_(con, ",\"store\":");
        jstr(con, con->store_path ? con->store_path : "");
        printf_(con, ",\"stack\":\"%s\",\"folders\":%u,\"messages\":%llu",
                con->stack ? con->stack : app->port->name, (unsigned)st.folders,
                (unsigned long long)st.messages);
        printf_(con, ",\"syncs\":%u,\"last_result\":", (unsigned)app->syncs);
        if (app->syncs == 0)
            puts_(con, "null");
        else if (app->last_rc == 0)
            puts_(con, "\"ok\"");
        else
            jstr(con, app->last_error);
        puts_(con, ",\"tls\":{\"version\":");
        jstr(con, app->tls_version);
        puts_(con, ",\"cipher\":");
        jstr(con, app->tls_cipher);
        printf_(con, ",\"resumed\":%s}}", app->tls_resumed ? "true" : "false");
        end_line(con);
        return 0;
    }
    printf_(con, "mode:     %s\n", online ? "online" : "offline");
    if (app->cfg.host)
        printf_(con, "server:   %s:%u (%s)\n", app->cfg.host,
                (unsigned)app->cfg.port, sec[app->cfg.security % 3]);
    printf_(con, "store:    %s (%u folders, %llu messages)\n",
            con->store_path ? con->store_path : "", (unsigned)st.folders,
            (unsigned long long)st.messages);
    printf_(con, "stack:    %s\n", con->stack ? con->stack : app->port->name);
    if (app->syncs)
        printf_(con, "last sync: %s\n", app->last_rc == 0 ? "ok" : app->last_error);
    if (app->tls_version[0])
        printf_(con, "tls:      %s %s\n", app->tls_version, app->tls_cipher);
    flush(con);
    return 0;
}

static int cmd_folders(satchel_console *con, int argc, char **argv)
{
    satchel_folder f;
    char after[SATCHEL_OPT_MAX_FOLDER_NAME + 1] = "";
    int first = 1, rc;
    (void)argc;
    (void)argv;
    if (con->json)
        puts_(con, "{\"folders\":[");
    for (;;) {
        rc = satchel_store_folder_next(con->app->store, NULL, after, &f);
        if (rc == SATCHEL_E_NOTFOUND)
            break;
        if (rc < 0) {
            con->line_len = 0;
            return error(con, rc, "cannot read folders: %s", satchel_strerror(rc));
        }
        memcpy(after, f.name, sizeof after);
        if (con->json) {
            if (!first)
                put(con, ",", 1);
            puts_(con, "{\"name\":");
            jstr(con, f.name);
            puts_(con, ",\"role\":");
            if (f.role)
                jstr(con, satchel_role_name(f.role));
            else
                puts_(con, "null");
            printf_(con,
                    ",\"messages\":%u,\"unseen\":%u,\"uidvalidity\":%u,"
                    "\"uidnext\":%u,\"highestmodseq\":%llu,\"selectable\":%s}",
                    (unsigned)f.count, (unsigned)f.unseen, (unsigned)f.uidvalidity,
                    (unsigned)f.uidnext, (unsigned long long)f.highestmodseq,
                    f.flags & SATCHEL_FOLDER_NOSELECT ? "false" : "true");
        } else {
            printf_(con, "%-30s %-8s %6u messages %6u unseen\n", f.name,
                    satchel_role_name(f.role), (unsigned)f.count,
                    (unsigned)f.unseen);
        }
        first = 0;
    }
    if (con->json) {
        puts_(con, "]}");
        end_line(con);
    } else {
        if (first)
            puts_(con, "(no folders: run sync)\n");
        flush(con);
    }
    return 0;
}

struct sync_ctx {
    satchel_console *con;
    int first;
    int errors;
};

static void on_event(void *ctx, const satchel_event *ev)
{
    struct sync_ctx *sc = ctx;
    satchel_console *con = sc->con;
    if (ev->type == SATCHEL_EV_ALERT) {
        if (!con->json) {
            puts_(con, "server alert: ");
            puts_(con, ev->text ? ev->text : "");
            end_line(con);
        }
        return;
    }
    if (con->json) {
        if (!sc->first)
            put(con, ",", 1);
        puts_(con, "{\"name\":");
        jstr(con, ev->folder);
        if (ev->type == SATCHEL_EV_FOLDER_ERROR) {
            puts_(con, ",\"error\":");
            jstr(con, ev->text ? ev->text : satchel_strerror(ev->err));
            put(con, "}", 1);
        } else {
            printf_(con, ",\"new\":%u,\"changed\":%u,\"vanished\":%u,\"total\":%u}",
                    (unsigned)ev->n_new, (unsigned)ev->n_changed,
                    (unsigned)ev->n_vanished, (unsigned)ev->total);
        }
    } else if (ev->type == SATCHEL_EV_FOLDER_ERROR) {
        printf_(con, "%s: error: %s\n", ev->folder,
                ev->text ? ev->text : satchel_strerror(ev->err));
        flush(con);
    } else {
        printf_(con, "%s: %u new, %u changed, %u vanished (%u total)\n",
                ev->folder, (unsigned)ev->n_new, (unsigned)ev->n_changed,
                (unsigned)ev->n_vanished, (unsigned)ev->total);
        flush(con);
    }
    if (ev->type == SATCHEL_EV_FOLDER_ERROR)
        sc->errors++;
    sc->first = 0;
}

static int cmd_sync(satchel_console *con, int argc, char **argv)
{
    satchel_app *app = con->app;
    struct sync_ctx sc = {con, 1, 0};
    int rc;
    if (app->cfg.offline || !app->cfg.host)
        return error(con, SATCHEL_E_OFFLINE, "%s",
                     app->cfg.offline ? "offline mode: sync needs the network"
                                      : "no server configured (--server)");
    if (con->json)
        puts_(con, "{\"folders\":[");
    rc = satchel_app_sync(app, argc > 1 ? argv[1] : NULL, on_event, &sc);
    if (con->json) {
        printf_(con,
                "],\"replayed\":%u,\"replay_failed\":%u,"
                "\"bytes_in\":%llu,\"bytes_out\":%llu,\"round_trips\":%u,"
                "\"commands\":%u,\"ok\":%s",
                (unsigned)app->replayed, (unsigned)app->replay_failed,
                (unsigned long long)app->last.bytes_in,
                (unsigned long long)app->last.bytes_out,
                (unsigned)app->last.round_trips, (unsigned)app->last.commands,
                rc == 0 ? "true" : "false");
        if (rc < 0) {
            puts_(con, ",\"error\":");
            jstr(con, app->last_error);
            printf_(con, ",\"code\":%d", rc);
        }
        put(con, "}", 1);
        end_line(con);
    } else {
        if (rc < 0)
            printf_(con, "error: %s\n", app->last_error);
        printf_(con, "sync %s: %llu bytes in, %llu bytes out, %u round trips\n",
                rc == 0 ? "done" : "failed",
                (unsigned long long)app->last.bytes_in,
                (unsigned long long)app->last.bytes_out,
                (unsigned)app->last.round_trips);
        flush(con);
    }
    return rc;
}

struct list_ctx {
    satchel_console *con;
    int first;
};

static void date_str(int64_t epoch, int tz, char *buf, size_t cap)
{
    if (satchel_mime_format_rfc3339(epoch, tz, buf, cap) < 0)
        snprintf(buf, cap, "1970-01-01T00:00:00Z");
}

static int list_cb(void *ctx, const satchel_msg *m)
{
    struct list_ctx *lc = ctx;
    satchel_console *con = lc->con;
    char date[40];
    date_str(m->date, m->date_tz, date, sizeof date);
    if (con->json) {
        if (!lc->first)
            put(con, ",", 1);
        printf_(con, "{\"uid\":%u,\"flags\":", (unsigned)m->uid);
        flags_json(con, m->flags, m->keywords);
        printf_(con, ",\"size\":%u,\"date\":\"%s\",\"from\":", (unsigned)m->size,
                date);
        jstr(con, m->from);
        puts_(con, ",\"subject\":");
        jstr(con, m->subject);
        if (m->preview[0]) {
            puts_(con, ",\"preview\":");
            jstr(con, m->preview);
        }
        put(con, "}", 1);
    } else {
        printf_(con, "%6u ", (unsigned)m->uid);
        flags_text(con, m->flags);
        printf_(con, " %.10s %-24.24s ", date, m->from);
        puts_(con, m->subject);
        end_line(con);
    }
    lc->first = 0;
    return 0;
}

static int cmd_list(satchel_console *con, int argc, char **argv)
{
    satchel_folder f;
    uint32_t offset = 0, count = 50;
    struct list_ctx lc = {con, 1};
    int rc;
    if ((argc > 2 && parse_u32(argv[2], &offset) < 0) ||
        (argc > 3 && parse_u32(argv[3], &count) < 0))
        return error(con, SATCHEL_E_INVAL, "usage: list FOLDER [OFFSET [COUNT]]");
    if ((rc = get_folder(con, argv[1], &f)) < 0)
        return rc;
    if (con->json) {
        puts_(con, "{\"folder\":");
        jstr(con, f.name);
        printf_(con, ",\"total\":%u,\"offset\":%u,\"messages\":[", (unsigned)f.count,
                (unsigned)offset);
    } else {
        printf_(con, "%s: %u messages\n", f.name, (unsigned)f.count);
    }
    rc = satchel_store_msg_list(con->app->store, f.id, offset, count, list_cb, &lc);
    if (rc < 0) {
        con->line_len = 0;
        if (con->json)
            end_line(con);
        return error(con, rc, "cannot list %s: %s", f.name, satchel_strerror(rc));
    }
    return close_out(con, "]}");
}

static int cmd_show(satchel_console *con, int argc, char **argv)
{
    satchel_folder f;
    satchel_msg *m;
    uint32_t uid;
    char date[40], idate[40];
    int rc;
    (void)argc;
    if (parse_u32(argv[2], &uid) < 0 || uid == 0)
        return error(con, SATCHEL_E_INVAL, "usage: show FOLDER UID");
    if ((rc = get_folder(con, argv[1], &f)) < 0)
        return rc;
    m = malloc(sizeof *m);
    if (!m)
        return error(con, SATCHEL_E_NOMEM, "out of memory");
    rc = satchel_store_msg_get(con->app->store, NULL, f.id, uid, m);
    if (rc < 0) {
        free(m);
        if (rc == SATCHEL_E_NOTFOUND)
            return error(con, rc, "no message with UID %u in %s", (unsigned)uid,
                         f.name);
        return error(con, rc, "cannot read message: %s", satchel_strerror(rc));
    }
    date_str(m->date, m->date_tz, date, sizeof date);
    date_str(m->internaldate, m->internaldate_tz, idate, sizeof idate);
    if (con->json) {
        puts_(con, "{\"folder\":");
        jstr(con, f.name);
        printf_(con, ",\"uid\":%u,\"flags\":", (unsigned)m->uid);
        flags_json(con, m->flags, m->keywords);
        printf_(con, ",\"size\":%u,\"date\":\"%s\",\"internaldate\":\"%s\",\"modseq\":%llu,\"from\":",
                (unsigned)m->size, date, idate, (unsigned long long)m->modseq);
        jstr(con, m->from);
        puts_(con, ",\"subject\":");
        jstr(con, m->subject);
        puts_(con, ",\"message_id\":");
        jstr(con, m->message_id);
        puts_(con, ",\"bodystructure\":");
        jstr(con, m->bodystructure);
        put(con, "}", 1);
        end_line(con);
    } else {
        printf_(con, "Folder:  %s\nUID:     %u\nFlags:   ", f.name, (unsigned)m->uid);
        flags_text(con, m->flags);
        if (m->keywords[0]) {
            put(con, " ", 1);
            puts_(con, m->keywords);
        }
        printf_(con, "\nSize:    %u\nDate:    %s\nArrived: %s\nFrom:    ",
                (unsigned)m->size, date, idate);
        puts_(con, m->from);
        puts_(con, "\nSubject: ");
        puts_(con, m->subject);
        puts_(con, "\nMsg-ID:  ");
        puts_(con, m->message_id);
        puts_(con, "\nParts:   ");
        puts_(con, m->bodystructure);
        end_line(con);
    }
    free(m);
    return 0;
}

/* ---------- bodies and the cache ---------- */

#define MAX_PARTS 32

struct msg_parts {
    satchel_folder f;
    satchel_msg m;
    satchel_part parts[MAX_PARTS];
    size_t n;
};

/* Load a message and its parts; prints the error itself. */
static int load_parts(satchel_console *con, const char *folder, const char *uidstr,
                      struct msg_parts *mp)
{
    uint32_t uid;
    int rc;
    if (parse_u32(uidstr, &uid) < 0 || uid == 0)
        return error(con, SATCHEL_E_INVAL, "bad UID '%s'", uidstr);
    if ((rc = get_folder(con, folder, &mp->f)) < 0)
        return rc;
    rc = satchel_store_msg_get(con->app->store, NULL, mp->f.id, uid, &mp->m);
    if (rc == SATCHEL_E_NOTFOUND)
        return error(con, rc, "no message with UID %u in %s", (unsigned)uid, mp->f.name);
    if (rc < 0)
        return error(con, rc, "cannot read message: %s", satchel_strerror(rc));
    mp->n = 0;
    if (!mp->m.bodystructure[0] ||
        satchel_body_parts(con->app->alloc, mp->m.bodystructure,
                           strlen(mp->m.bodystructure), mp->parts, MAX_PARTS, &mp->n) < 0 ||
        mp->n == 0) {
        /* No usable structure: the whole text of the message, as is. */
        memset(&mp->parts[0], 0, sizeof mp->parts[0]);
        strcpy(mp->parts[0].section, "TEXT");
        strcpy(mp->parts[0].type, "text");
        strcpy(mp->parts[0].subtype, "plain");
        mp->parts[0].size = mp->m.size;
        mp->n = 1;
    }
    return 0;
}

static int is_cached(satchel_console *con, const struct msg_parts *mp, size_t i)
{
    satchel_body_info bi;
    return satchel_store_body_info(con->app->store, NULL, mp->f.id, mp->m.uid,
                                   mp->parts[i].section, &bi) == 0 && bi.complete;
}

static int cmd_parts(satchel_console *con, int argc, char **argv)
{
    static struct msg_parts mp;
    size_t i;
    int rc;
    (void)argc;
    if ((rc = load_parts(con, argv[1], argv[2], &mp)) < 0)
        return rc;
    if (con->json) {
        puts_(con, "{\"folder\":");
        jstr(con, mp.f.name);
        printf_(con, ",\"uid\":%u,\"pinned\":%s,\"parts\":[", (unsigned)mp.m.uid,
                satchel_store_is_pinned(con->app->store, NULL, mp.f.id, mp.m.uid) > 0
                    ? "true" : "false");
    }
    for (i = 0; i < mp.n; i++) {
        const satchel_part *p = &mp.parts[i];
        int cached = is_cached(con, &mp, i);
        if (con->json) {
            if (i)
                put(con, ",", 1);
            puts_(con, "{\"part\":");
            jstr(con, p->section);
            printf_(con, ",\"type\":\"%s/%s\",\"charset\":", p->type, p->subtype);
            jstr(con, p->charset);
            puts_(con, ",\"encoding\":");
            jstr(con, p->encoding);
            puts_(con, ",\"name\":");
            jstr(con, p->name);
            printf_(con, ",\"size\":%llu,\"attachment\":%s,\"cached\":%s}",
                    (unsigned long long)p->size, p->attachment ? "true" : "false",
                    cached ? "true" : "false");
        } else {
            printf_(con, "%-6s %s/%s %llu bytes%s%s%s%s\n", p->section, p->type,
                    p->subtype, (unsigned long long)p->size,
                    p->attachment ? " attachment" : "", p->name[0] ? " \"" : "",
                    p->name, p->name[0] ? "\"" : "");
            if (cached)
                puts_(con, "       (cached)\n");
        }
    }
    return close_out(con, "]}");
}

struct print_ctx {
    satchel_console *con;
    satchel_body_decoder dec;
};

static int emit_text(void *ctx, const char *utf8, size_t len)
{
    struct print_ctx *pc = ctx;
    /* Display text uses plain newlines; --raw keeps the bytes as stored. */
    while (len > 0) {
        const char *cr = memchr(utf8, '\r', len);
        size_t n = cr ? (size_t)(cr - utf8) : len;
        if (pc->con->json)
            jstr_n(pc->con, utf8, n);
        else
            put(pc->con, utf8, n);
        if (!cr)
            break;
        utf8 += n + 1;
        len -= n + 1;
    }
    return 0;
}

static int print_chunk(void *ctx, const uint8_t *data, size_t len)
{
    struct print_ctx *pc = ctx;
    return satchel_body_decoder_feed(&pc->dec, data, len, emit_text, pc);
}

static int raw_chunk(void *ctx, const uint8_t *data, size_t len)
{
    struct print_ctx *pc = ctx;
    if (pc->con->json)
        jstr_n(pc->con, (const char *)data, len);
    else
        put(pc->con, (const char *)data, len);
    return 0;
}

static int cmd_body(satchel_console *con, int argc, char **argv)
{
    static struct msg_parts mp;
    static struct print_ctx pc;
    satchel_app *app = con->app;
    satchel_body_info bi;
    satchel_store_txn *t;
    const satchel_part *p = NULL;
    const char *want = NULL;
    int raw = 0, i, rc, known, hit;
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--raw") == 0)
            raw = 1;
        else if (!want)
            want = argv[i];
        else
            return error(con, SATCHEL_E_INVAL, "usage: body FOLDER UID [PART] [--raw]");
    }
    if ((rc = load_parts(con, argv[1], argv[2], &mp)) < 0)
        return rc;
    if (want) {
        for (i = 0; i < (int)mp.n; i++)
            if (strcmp(mp.parts[i].section, want) == 0)
                p = &mp.parts[i];
        if (!p)
            return error(con, SATCHEL_E_NOTFOUND, "message %u has no part %s",
                         (unsigned)mp.m.uid, want);
    } else {
        i = satchel_body_pick_text(mp.parts, mp.n);
        if (i < 0)
            return error(con, SATCHEL_E_NOTFOUND,
                         "message %u has no text part (see parts)", (unsigned)mp.m.uid);
        p = &mp.parts[i];
    }
    rc = satchel_store_body_info(app->store, NULL, mp.f.id, mp.m.uid, p->section, &bi);
    hit = rc == 0 && bi.complete;
    if (!hit) {
        satchel_cache_stats cs;
        satchel_store_cache_stats(app->store, &cs);
        if (cs.budget && p->size > cs.budget)
            return error(con, SATCHEL_E_RANGE,
                         "part %s is %llu bytes, larger than the whole cache budget (%llu)",
                         p->section, (unsigned long long)p->size,
                         (unsigned long long)cs.budget);
        if (app->cfg.offline || !app->cfg.host)
            return error(con, SATCHEL_E_OFFLINE,
                         "%s %u part %s is not available offline", mp.f.name,
                         (unsigned)mp.m.uid, p->section);
        rc = satchel_app_fetch_body(app, mp.f.name, mp.m.uid, p->section, p->size);
        if (rc < 0)
            return error(con, rc, "%s", app->last_error);
    } else if (satchel_store_begin(app->store, &t) == 0) {
        if (satchel_store_body_touch(t, mp.f.id, mp.m.uid, p->section, 1) < 0)
            satchel_store_abort(t);
        else
            satchel_store_commit(t);
    }
    pc.con = con;
    known = satchel_body_decoder_init(&pc.dec, p->encoding, p->charset);
    if (con->json) {
        puts_(con, "{\"folder\":");
        jstr(con, mp.f.name);
        printf_(con, ",\"uid\":%u,\"part\":", (unsigned)mp.m.uid);
        jstr(con, p->section);
        printf_(con, ",\"type\":\"%s/%s\",\"charset\":", p->type, p->subtype);
        jstr(con, p->charset);
        printf_(con, ",\"from_cache\":%s", hit ? "true" : "false");
        if (!hit)
            printf_(con, ",\"fetch_ms\":%u,\"ttfb_ms\":%u,\"bytes_in\":%llu",
                    (unsigned)app->session_ms, (unsigned)app->ttfb_ms,
                    (unsigned long long)app->last.bytes_in);
        if (!raw && !known)
            puts_(con, ",\"charset_supported\":false");
        puts_(con, raw ? ",\"raw\":\"" : ",\"text\":\"");
    } else if (!raw && !known) {
        printf_(con, "[charset %s is not supported: raw bytes shown]\n", p->charset);
    }
    if (raw) {
        rc = satchel_store_body_read(app->store, mp.f.id, mp.m.uid, p->section,
                                     raw_chunk, &pc);
    } else {
        rc = satchel_store_body_read(app->store, mp.f.id, mp.m.uid, p->section,
                                     print_chunk, &pc);
        if (rc == 0)
            rc = satchel_body_decoder_finish(&pc.dec, emit_text, &pc);
    }
    if (rc < 0) {
        con->line_len = 0;
        if (con->json)
            end_line(con);
        return error(con, rc, "cannot read cached body: %s", satchel_strerror(rc));
    }
    return close_out(con, "\"}");
}

static int cmd_cache(satchel_console *con, int argc, char **argv)
{
    satchel_app *app = con->app;
    satchel_cache_stats cs;
    satchel_store_txn *t;
    satchel_folder f;
    uint32_t uid = 0, n = 0;
    int rc;
    if (argc == 1) {
        satchel_store_cache_stats(app->store, &cs);
        if (con->json) {
            printf_(con,
                    "{\"bytes\":%llu,\"budget\":%llu,\"entries\":%llu,\"hits\":%llu,"
                    "\"misses\":%llu,\"evictions\":%llu,\"pinned\":%llu}",
                    (unsigned long long)cs.bytes, (unsigned long long)cs.budget,
                    (unsigned long long)cs.entries, (unsigned long long)cs.hits,
                    (unsigned long long)cs.misses, (unsigned long long)cs.evictions,
                    (unsigned long long)cs.pinned);
            end_line(con);
        } else {
            printf_(con,
                    "cache: %llu bytes of %llu (%llu bodies), %llu hits, %llu misses, "
                    "%llu evictions, %llu pinned\n",
                    (unsigned long long)cs.bytes, (unsigned long long)cs.budget,
                    (unsigned long long)cs.entries, (unsigned long long)cs.hits,
                    (unsigned long long)cs.misses, (unsigned long long)cs.evictions,
                    (unsigned long long)cs.pinned);
            flush(con);
        }
        return 0;
    }
    if (strcmp(argv[1], "evict") == 0) {
        if (argc > 4)
            return error(con, SATCHEL_E_INVAL, "usage: cache evict [FOLDER [UID]]");
        memset(&f, 0, sizeof f);
        if (argc >= 3 && (rc = get_folder(con, argv[2], &f)) < 0)
            return rc;
        if (argc == 4 && (parse_u32(argv[3], &uid) < 0 || uid == 0))
            return error(con, SATCHEL_E_INVAL, "bad UID '%s'", argv[3]);
    } else if (strcmp(argv[1], "pin") == 0 || strcmp(argv[1], "unpin") == 0) {
        if (argc != 4)
            return error(con, SATCHEL_E_INVAL, "usage: cache %s FOLDER UID", argv[1]);
        if ((rc = get_folder(con, argv[2], &f)) < 0)
            return rc;
        if (parse_u32(argv[3], &uid) < 0 || uid == 0)
            return error(con, SATCHEL_E_INVAL, "bad UID '%s'", argv[3]);
        {
            satchel_msg *m = &con->app->scratch_msg;
            if (satchel_store_msg_get(app->store, NULL, f.id, uid, m) < 0)
                return error(con, SATCHEL_E_NOTFOUND, "no message with UID %u in %s",
                             (unsigned)uid, f.name);
        }
    } else {
        return error(con, SATCHEL_E_INVAL,
                     "usage: cache [evict [FOLDER [UID]] | pin FOLDER UID | unpin FOLDER UID]");
    }
    if ((rc = satchel_store_begin(app->store, &t)) < 0)
        return error(con, rc, "store busy: %s", satchel_strerror(rc));
    if (argv[1][0] == 'e')
        rc = satchel_store_body_evict(t, f.id, uid, NULL, &n);
    else
        rc = satchel_store_pin(t, f.id, uid, argv[1][0] == 'p');
    if (rc < 0) {
        satchel_store_abort(t);
        return error(con, rc, "cache %s failed: %s", argv[1], satchel_strerror(rc));
    }
    if ((rc = satchel_store_commit(t)) < 0)
        return error(con, rc, "cache %s failed: %s", argv[1], satchel_strerror(rc));
    if (con->json) {
        printf_(con, "{\"ok\":true,\"action\":\"%s\"", argv[1]);
        if (argv[1][0] == 'e')
            printf_(con, ",\"evicted\":%u", (unsigned)n);
        put(con, "}", 1);
        end_line(con);
    } else {
        if (argv[1][0] == 'e')
            printf_(con, "evicted %u bodies\n", (unsigned)n);
        else
            printf_(con, "%s\n", argv[1][0] == 'p' ? "pinned" : "unpinned");
        flush(con);
    }
    return 0;
}

/* ---------- offline changes ---------- */

static int ok_line(satchel_console *con, const char *action, const char *fmt, ...)
{
    char buf[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (con->json) {
        printf_(con, "{\"ok\":true,\"action\":\"%s\"%s%s}", action, buf[0] ? "," : "", buf);
    } else {
        printf_(con, "%s: ok", action);
    }
    end_line(con);
    return 0;
}

static int op_error(satchel_console *con, int rc, const char *what)
{
    if (rc == SATCHEL_E_NOTFOUND)
        return error(con, rc, "%s: no such folder or message", what);
    if (rc == SATCHEL_E_BUSY)
        return error(con, rc, "%s: folder already exists", what);
    return error(con, rc, "%s: %s", what, satchel_strerror(rc));
}

static int cmd_flag(satchel_console *con, int argc, char **argv)
{
    uint32_t uid, add = 0, del = 0;
    char kwa[64] = "", kwd[64] = "";
    int i, rc;
    if (parse_u32(argv[2], &uid) < 0 || uid == 0)
        return error(con, SATCHEL_E_INVAL, "bad UID '%s'", argv[2]);
    for (i = 3; i < argc; i++)
        if (satchel_ops_parse_flag(argv[i], &add, &del, kwa, sizeof kwa, kwd,
                                   sizeof kwd) < 0)
            return error(con, SATCHEL_E_INVAL,
                         "bad flag '%s' (use +\\Seen, -\\Flagged, +$Forwarded ...)",
                         argv[i]);
    rc = satchel_ops_flag(con->app->store, argv[1], uid, add, del, kwa, kwd);
    if (rc < 0)
        return op_error(con, rc, "flag");
    return ok_line(con, "flag", "\"uid\":%u", (unsigned)uid);
}

static int cmd_move(satchel_console *con, int argc, char **argv)
{
    uint32_t uid, nu = 0;
    int rc;
    (void)argc;
    if (parse_u32(argv[2], &uid) < 0 || uid == 0)
        return error(con, SATCHEL_E_INVAL, "bad UID '%s'", argv[2]);
    if (strcmp(argv[1], argv[3]) == 0)
        return error(con, SATCHEL_E_INVAL, "move: source and destination are the same");
    rc = satchel_ops_move(con->app->store, argv[1], uid, argv[3], &nu);
    if (rc < 0)
        return op_error(con, rc, "move");
    return ok_line(con, "move", "\"uid\":%u,\"new_uid\":%u", (unsigned)uid, (unsigned)nu);
}

static int cmd_delete(satchel_console *con, int argc, char **argv)
{
    uint32_t uid, nu = 0;
    int rc, trashed = 0;
    (void)argc;
    if (parse_u32(argv[2], &uid) < 0 || uid == 0)
        return error(con, SATCHEL_E_INVAL, "bad UID '%s'", argv[2]);
    rc = satchel_ops_delete(con->app->store, argv[1], uid, &trashed, &nu);
    if (rc < 0)
        return op_error(con, rc, "delete");
    return ok_line(con, "delete", "\"uid\":%u,\"to_trash\":%s,\"new_uid\":%u",
                   (unsigned)uid, trashed ? "true" : "false", (unsigned)nu);
}

static int cmd_mkdir(satchel_console *con, int argc, char **argv)
{
    int rc;
    (void)argc;
    rc = satchel_ops_mkdir(con->app->store, argv[1]);
    if (rc < 0)
        return op_error(con, rc, "mkdir");
    return ok_line(con, "mkdir", "");
}

static const char *op_name(int type)
{
    switch (type) {
    case SATCHEL_OP_FLAG: return "flag";
    case SATCHEL_OP_MOVE: return "move";
    case SATCHEL_OP_EXPUNGE: return "expunge";
    case SATCHEL_OP_MKDIR: return "mkdir";
    default: return "?";
    }
}

static void flagdelta(char *buf, size_t cap, const satchel_op *op)
{
    static const char *const names[] = {"\\Seen", "\\Answered", "\\Flagged",
                                        "\\Deleted", "\\Draft"};
    size_t n = 0;
    int i;
    buf[0] = '\0';
    for (i = 0; i < 5; i++) {
        if (op->add & (1u << i))
            n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s+%s", n ? " " : "", names[i]);
        if (op->del & (1u << i))
            n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s-%s", n ? " " : "", names[i]);
    }
    if (op->kw_add[0] && n < cap)
        n += (size_t)snprintf(buf + n, cap - n, "%s+%s", n ? " " : "", op->kw_add);
    if (op->kw_del[0] && n < cap)
        snprintf(buf + n, cap - n, "%s-%s", n ? " " : "", op->kw_del);
}

static int cmd_queue(satchel_console *con, int argc, char **argv)
{
    satchel_store *st = con->app->store;
    satchel_op *op = &con->app->scratch_op;
    uint64_t at = 0, pending = 0, failed = 0;
    int first = 1, rc;
    if (argc >= 2) {
        char *end;
        unsigned long long id;
        if (argc != 3 || (strcmp(argv[1], "retry") != 0 && strcmp(argv[1], "drop") != 0))
            return error(con, SATCHEL_E_INVAL, "usage: queue [retry ID | drop ID]");
        id = strtoull(argv[2], &end, 10);
        if (*end || id == 0)
            return error(con, SATCHEL_E_INVAL, "bad queue ID '%s'", argv[2]);
        rc = argv[1][0] == 'r' ? satchel_ops_retry(st, id) : satchel_ops_drop(st, id);
        if (rc == SATCHEL_E_INVAL)
            return error(con, rc, "queue entry %llu is not a failed one", id);
        if (rc < 0)
            return op_error(con, rc, argv[1]);
        return ok_line(con, argv[1], "\"id\":%llu", id);
    }
    satchel_store_queue_counts(st, &pending, &failed);
    if (con->json)
        printf_(con, "{\"pending\":%llu,\"failed\":%llu,\"entries\":[",
                (unsigned long long)pending, (unsigned long long)failed);
    else
        printf_(con, "queue: %llu pending, %llu failed\n", (unsigned long long)pending,
                (unsigned long long)failed);
    while (satchel_store_op_next(st, NULL, at, op) == 0) {
        char delta[200];
        at = op->id;
        flagdelta(delta, sizeof delta, op);
        if (con->json) {
            if (!first)
                put(con, ",", 1);
            printf_(con, "{\"id\":%llu,\"op\":\"%s\",\"state\":\"%s\",\"folder\":",
                    (unsigned long long)op->id, op_name(op->type),
                    op->state == SATCHEL_OP_FAILED ? "failed" : "pending");
            jstr(con, op->type == SATCHEL_OP_MKDIR ? op->dest : op->folder);
            if (op->type != SATCHEL_OP_MKDIR)
                printf_(con, ",\"uid\":%u", (unsigned)op->uid);
            if (op->type == SATCHEL_OP_MOVE) {
                puts_(con, ",\"dest\":");
                jstr(con, op->dest);
            }
            if (op->type == SATCHEL_OP_FLAG) {
                puts_(con, ",\"flags\":");
                jstr(con, delta);
            }
            printf_(con, ",\"attempts\":%u", (unsigned)op->attempts);
            if (op->state == SATCHEL_OP_FAILED) {
                puts_(con, ",\"reason\":");
                jstr(con, op->reason);
            }
            put(con, "}", 1);
        } else {
            printf_(con, "%6llu %-7s %-7s %s", (unsigned long long)op->id,
                    op->state == SATCHEL_OP_FAILED ? "FAILED" : "pending",
                    op_name(op->type), op->type == SATCHEL_OP_MKDIR ? op->dest : op->folder);
            if (op->type != SATCHEL_OP_MKDIR)
                printf_(con, " %u", (unsigned)op->uid);
            if (op->type == SATCHEL_OP_MOVE)
                printf_(con, " -> %s", op->dest);
            if (op->type == SATCHEL_OP_FLAG)
                printf_(con, " %s", delta);
            if (op->state == SATCHEL_OP_FAILED)
                printf_(con, "  (%s)", op->reason);
            end_line(con);
        }
        first = 0;
    }
    return close_out(con, "]}");
}

static int cmd_online(satchel_console *con, int argc, char **argv)
{
    (void)argc;
    if (argv[0][1] == 'n' && !con->app->cfg.host)
        return error(con, SATCHEL_E_INVAL, "no server configured (--server)");
    con->app->cfg.offline = argv[0][1] != 'n';
    if (con->app->cfg.offline)
        return ok_line(con, "offline", "");
    /* Coming online flushes the queue (and brings the store up to date). */
    return cmd_sync(con, 1, argv);
}

static int cmd_stats(satchel_console *con, int argc, char **argv)
{
    satchel_app *app = con->app;
    satchel_store_stats st;
    (void)argc;
    (void)argv;
    satchel_store_stats_get(app->store, &st);
    if (con->json) {
        printf_(con,
                "{\"bytes_in\":%llu,\"bytes_out\":%llu,\"round_trips\":%u,"
                "\"commands\":%u,\"syncs\":%u,",
                (unsigned long long)app->total.bytes_in,
                (unsigned long long)app->total.bytes_out,
                (unsigned)app->total.round_trips, (unsigned)app->total.commands,
                (unsigned)app->syncs);
        printf_(con,
                "\"store_bytes\":%llu,\"store_map_size\":%llu,\"folders\":%u,"
                "\"messages\":%llu,\"heap_now\":%llu,\"heap_peak\":%llu}",
                (unsigned long long)st.bytes, (unsigned long long)st.map_size,
                (unsigned)st.folders, (unsigned long long)st.messages,
                (unsigned long long)(app->heap ? app->heap->now : 0),
                (unsigned long long)(app->heap ? app->heap->peak : 0));
        end_line(con);
        return 0;
    }
    printf_(con, "network:  %llu bytes in, %llu bytes out, %u round trips, %u commands, %u syncs\n",
            (unsigned long long)app->total.bytes_in,
            (unsigned long long)app->total.bytes_out,
            (unsigned)app->total.round_trips, (unsigned)app->total.commands,
            (unsigned)app->syncs);
    printf_(con, "store:    %llu bytes used of %llu, %u folders, %llu messages\n",
            (unsigned long long)st.bytes, (unsigned long long)st.map_size,
            (unsigned)st.folders, (unsigned long long)st.messages);
    if (app->heap)
        printf_(con, "heap:     %llu bytes now, %llu peak\n",
                (unsigned long long)app->heap->now,
                (unsigned long long)app->heap->peak);
    flush(con);
    return 0;
}

static const struct cmd commands[N_COMMANDS] = {
    {"help", "help", "list commands", 0, 0, cmd_help},
    {"status", "status", "connection, store and last sync", 0, 0, cmd_status},
    {"folders", "folders", "folders in the store with counts", 0, 0, cmd_folders},
    {"sync", "sync [FOLDER]", "fetch new headers and changes from the server",
     0, 1, cmd_sync},
    {"list", "list FOLDER [OFFSET [COUNT]]", "messages, newest first", 1, 3,
     cmd_list},
    {"show", "show FOLDER UID", "one message's stored headers", 2, 2, cmd_show},
    {"parts", "parts FOLDER UID", "MIME parts with type, name, size, cached", 2, 2,
     cmd_parts},
    {"body", "body FOLDER UID [PART] [--raw]",
     "show the text part (or PART); fetched on demand into the cache", 2, 4, cmd_body},
    {"cache", "cache [evict [FOLDER [UID]] | pin FOLDER UID | unpin FOLDER UID]",
     "body cache statistics and control", 0, 3, cmd_cache},
    {"flag", "flag FOLDER UID +FLAG|-FLAG ...", "change flags (offline too; queued)", 3,
     6, cmd_flag},
    {"move", "move FOLDER UID DEST", "move a message (offline too; queued)", 3, 3,
     cmd_move},
    {"delete", "delete FOLDER UID", "move to Trash, or expunge there (queued)", 2, 2,
     cmd_delete},
    {"mkdir", "mkdir NAME", "create a folder (offline too; queued)", 1, 1, cmd_mkdir},
    {"queue", "queue [retry ID | drop ID]", "pending and failed changes, with reasons",
     0, 2, cmd_queue},
    {"online", "online", "use the network again: replay the queue and sync", 0, 0,
     cmd_online},
    {"offline", "offline", "stop using the network; changes are queued", 0, 0,
     cmd_online},
    {"stats", "stats", "traffic, round trips, store size, heap", 0, 0, cmd_stats},
    {NULL, NULL, NULL, 0, 0, NULL},
};

/* ---------- parsing ---------- */

/* Split on blanks; double quotes group (with \" and \\ escapes). */
static int tokenize(char *s, char **argv, int max)
{
    int argc = 0;
    while (*s) {
        char *o;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        if (!*s)
            break;
        if (argc == max)
            return -1;
        argv[argc++] = o = s;
        if (*s == '"') {
            s++;
            while (*s && *s != '"') {
                if (*s == '\\' && s[1])
                    s++;
                *o++ = *s++;
            }
            if (*s != '"')
                return -1;
            s++;
            if (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
                return -1;
        } else {
            while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
                *o++ = *s++;
        }
        if (*s)
            s++;
        *o = '\0';
    }
    return argc;
}

void satchel_console_init(satchel_console *con, satchel_app *app,
                          const satchel_console_io *io, int json)
{
    memset(con, 0, sizeof *con);
    con->app = app;
    con->io = *io;
    con->json = json;
}

int satchel_console_exec(satchel_console *con, const char *line)
{
    char buf[1024];
    char *argv[MAX_ARGS];
    const struct cmd *c;
    int argc;
    if (strlen(line) >= sizeof buf)
        return error(con, SATCHEL_E_INVAL, "command line too long");
    memcpy(buf, line, strlen(line) + 1);
    argc = tokenize(buf, argv, MAX_ARGS);
    if (argc < 0)
        return error(con, SATCHEL_E_INVAL, "cannot parse command (quotes?)");
    if (argc == 0)
        return 0;
    for (c = commands; c->name; c++) {
        if (strcmp(c->name, argv[0]) != 0)
            continue;
        if (argc - 1 < c->min_args || argc - 1 > c->max_args)
            return error(con, SATCHEL_E_INVAL, "usage: %s", c->usage);
        return c->fn(con, argc, argv);
    }
    return error(con, SATCHEL_E_INVAL, "unknown command '%s' (try help)", argv[0]);
}

int satchel_console_run_script(satchel_console *con, const char *script)
{
    char cmd[1024];
    int first_rc = 0;
    while (*script) {
        size_t n = 0;
        int inq = 0, rc;
        while (script[n] && (inq || script[n] != ';')) {
            if (script[n] == '"')
                inq = !inq;
            else if (script[n] == '\\' && inq && script[n + 1])
                n++;
            n++;
        }
        if (n >= sizeof cmd) {
            rc = error(con, SATCHEL_E_INVAL, "command line too long");
        } else {
            memcpy(cmd, script, n);
            cmd[n] = '\0';
            rc = satchel_console_exec(con, cmd);
        }
        if (rc < 0 && first_rc == 0)
            first_rc = rc;
        script += n;
        if (*script == ';')
            script++;
    }
    return first_rc;
}
