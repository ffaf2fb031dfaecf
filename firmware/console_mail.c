/* Console commands that read mail from the store: folders, list, show,
 * parts, body, and the body cache. */
#include <stdlib.h>
#include <string.h>

#include "console_int.h"
#include "satchel/body.h"
#include "satchel/mime.h"

static int cmd_folders(satchel_console *con, int argc, char **argv)
{
    satchel_folder f;
    char after[SATCHEL_OPT_MAX_FOLDER_NAME + 1] = "";
    int n = 0, rc;
    (void)argc;
    (void)argv;
    con_kv_begin(con);
    con_kv_list(con, "folders");
    for (;;) {
        rc = satchel_store_folder_next(con->app->store, NULL, after, &f);
        if (rc == SATCHEL_E_NOTFOUND)
            break;
        if (rc < 0)
            return con_error(con, rc, "cannot read folders: %s", satchel_strerror(rc));
        memcpy(after, f.name, sizeof after);
        con_kv_item(con);
        con_kv_str(con, "name", f.name, "%-30s ");
        if (!f.role)
            con_kv_null(con, "role");
        con_kv_str(con, f.role ? "role" : NULL, satchel_role_name(f.role), "%-8s ");
        con_kv_u64(con, "messages", f.count, "%6u messages ");
        con_kv_u64(con, "unseen", f.unseen, "%6u unseen\n");
        con_kv_u64(con, "uidvalidity", f.uidvalidity, NULL);
        con_kv_u64(con, "uidnext", f.uidnext, NULL);
        con_kv_u64(con, "highestmodseq", f.highestmodseq, NULL);
        con_kv_bool(con, "selectable", !(f.flags & SATCHEL_FOLDER_NOSELECT), NULL);
        con_kv_item_end(con);
        n++;
    }
    con_kv_list_end(con);
    if (n == 0)
        con_kv_str(con, NULL, "", "(no folders: run sync)\n");
    return con_kv_end(con);
}

static void date_str(int64_t epoch, int tz, char *buf, size_t cap)
{
    if (satchel_mime_format_rfc3339(epoch, tz, buf, cap) < 0) {
        strncpy(buf, "1970-01-01T00:00:00Z", cap - 1);
        buf[cap - 1] = '\0';
    }
}

static int list_cb(void *ctx, const satchel_msg *m)
{
    satchel_console *con = ctx;
    char date[40];
    date_str(m->date, m->date_tz, date, sizeof date);
    con_kv_item(con);
    con_kv_u64(con, "uid", m->uid, "%6u ");
    con_kv_flags(con, "flags", m->flags, m->keywords, "%s ");
    con_kv_u64(con, "size", m->size, NULL);
    con_kv_str(con, "date", date, "%.10s ");
    con_kv_str(con, "from", m->from, "%-24.24s ");
    con_kv_str(con, "subject", m->subject, "%s\n");
    if (m->preview[0])
        con_kv_str(con, "preview", m->preview, NULL);
    con_kv_item_end(con);
    return 0;
}

static int cmd_list(satchel_console *con, int argc, char **argv)
{
    satchel_folder f;
    uint32_t offset = 0, count = 50;
    int rc;
    if ((argc > 2 && con_parse_u32(argv[2], &offset) < 0) ||
        (argc > 3 && con_parse_u32(argv[3], &count) < 0))
        return con_error(con, SATCHEL_E_INVAL, "usage: list FOLDER [OFFSET [COUNT]]");
    if ((rc = con_get_folder(con, argv[1], &f)) < 0)
        return rc;
    con_kv_begin(con);
    con_kv_str(con, "folder", f.name, "%s: ");
    con_kv_u64(con, "total", f.count, "%u messages\n");
    con_kv_u64(con, "offset", offset, NULL);
    con_kv_list(con, "messages");
    rc = satchel_store_msg_list(con->app->store, f.id, offset, count, list_cb, con);
    if (rc < 0)
        return con_error(con, rc, "cannot list %s: %s", f.name, satchel_strerror(rc));
    con_kv_list_end(con);
    return con_kv_end(con);
}

#define CUT_NOTE "(structure cut: the server's BODYSTRUCTURE was too large or too " \
                 "deep to keep; the parts above are the ones it describes)\n"

static int cmd_show(satchel_console *con, int argc, char **argv)
{
    satchel_folder f;
    satchel_msg *m = &con->app->scratch_msg;
    uint32_t uid;
    char date[40], idate[40];
    int rc;
    (void)argc;
    if (con_parse_u32(argv[2], &uid) < 0 || uid == 0)
        return con_error(con, SATCHEL_E_INVAL, "usage: show FOLDER UID");
    if ((rc = con_get_folder(con, argv[1], &f)) < 0)
        return rc;
    rc = satchel_store_msg_get(con->app->store, NULL, f.id, uid, m);
    if (rc == SATCHEL_E_NOTFOUND)
        return con_error(con, rc, "no message with UID %u in %s", (unsigned)uid, f.name);
    if (rc < 0)
        return con_error(con, rc, "cannot read message: %s", satchel_strerror(rc));
    date_str(m->date, m->date_tz, date, sizeof date);
    date_str(m->internaldate, m->internaldate_tz, idate, sizeof idate);
    con_kv_begin(con);
    con_kv_str(con, "folder", f.name, "Folder:  %s\n");
    con_kv_u64(con, "uid", m->uid, "UID:     %u\n");
    con_kv_flags(con, "flags", m->flags, m->keywords, "Flags:   %s");
    con_kv_str(con, NULL, m->keywords, m->keywords[0] ? " %s\n" : "\n");
    con_kv_u64(con, "size", m->size, "Size:    %u\n");
    con_kv_str(con, "date", date, "Date:    %s\n");
    con_kv_str(con, "internaldate", idate, "Arrived: %s\n");
    con_kv_u64(con, "modseq", m->modseq, NULL);
    con_kv_str(con, "from", m->from, "From:    %s\n");
    con_kv_str(con, "subject", m->subject, "Subject: %s\n");
    con_kv_str(con, "message_id", m->message_id, "Msg-ID:  %s\n");
    con_kv_str(con, "bodystructure", m->bodystructure, "Parts:   %s\n");
    con_kv_bool(con, "structure_cut", (m->mflags & SATCHEL_MSG_F_BS_TRUNCATED) != 0,
                (m->mflags & SATCHEL_MSG_F_BS_TRUNCATED) ? CUT_NOTE : NULL);
    return con_kv_end(con);
}

/* ---------- bodies and the cache ---------- */

#define MAX_PARTS 128 /* a stored structure (4 KB) describes fewer */

struct msg_parts {
    satchel_folder f;
    satchel_part parts[MAX_PARTS];
    size_t n;
    int cut; /* the server's structure did not fit: these parts are a prefix */
};



/* Load a message (into the app's scratch message) and its parts; prints
 * the error itself. */
static int load_parts(satchel_console *con, const char *folder, const char *uidstr,
                      struct msg_parts *mp)
{
    satchel_msg *m = &con->app->scratch_msg;
    uint32_t uid;
    int rc;
    if (con_parse_u32(uidstr, &uid) < 0 || uid == 0)
        return con_error(con, SATCHEL_E_INVAL, "bad UID '%s'", uidstr);
    if ((rc = con_get_folder(con, folder, &mp->f)) < 0)
        return rc;
    rc = satchel_store_msg_get(con->app->store, NULL, mp->f.id, uid, m);
    if (rc == SATCHEL_E_NOTFOUND)
        return con_error(con, rc, "no message with UID %u in %s", (unsigned)uid,
                         mp->f.name);
    if (rc < 0)
        return con_error(con, rc, "cannot read message: %s", satchel_strerror(rc));
    mp->n = 0;
    mp->cut = (m->mflags & SATCHEL_MSG_F_BS_TRUNCATED) != 0;
    if (!m->bodystructure[0] ||
        satchel_body_parts_prefix(con->app->alloc, m->bodystructure,
                                  strlen(m->bodystructure), mp->cut, mp->parts,
                                  MAX_PARTS, &mp->n) < 0 ||
        mp->n == 0) {
        /* No usable structure: the whole text of the message, as is. */
        memset(&mp->parts[0], 0, sizeof mp->parts[0]);
        strcpy(mp->parts[0].section, "TEXT");
        strcpy(mp->parts[0].type, "text");
        strcpy(mp->parts[0].subtype, "plain");
        mp->parts[0].size = m->size;
        mp->n = 1;
    }
    return 0;
}

static int is_cached(satchel_console *con, const struct msg_parts *mp, size_t i)
{
    satchel_body_info bi;
    return satchel_store_body_info(con->app->store, NULL, mp->f.id,
                                   con->app->scratch_msg.uid, mp->parts[i].section,
                                   &bi) == 0 &&
           bi.complete;
}

static void kv_type(satchel_console *con, const satchel_part *p, const char *fmt)
{
    char type[sizeof p->type + sizeof p->subtype + 1];
    size_t t = strlen(p->type), s = strlen(p->subtype);
    memcpy(type, p->type, t);
    type[t] = '/';
    memcpy(type + t + 1, p->subtype, s + 1);
    con_kv_str(con, "type", type, fmt);
}

static int cmd_parts(satchel_console *con, int argc, char **argv)
{
    struct msg_parts *mp = malloc(sizeof *mp);
    uint32_t uid;
    size_t i;
    int rc;
    (void)argc;
    if (!mp)
        return con_error(con, SATCHEL_E_NOMEM, "out of memory");
    if ((rc = load_parts(con, argv[1], argv[2], mp)) < 0) {
        free(mp);
        return rc;
    }
    uid = con->app->scratch_msg.uid;
    con_kv_begin(con);
    con_kv_str(con, "folder", mp->f.name, NULL);
    con_kv_u64(con, "uid", uid, NULL);
    con_kv_bool(con, "pinned",
                satchel_store_is_pinned(con->app->store, NULL, mp->f.id, uid) > 0, NULL);
    con_kv_list(con, "parts");
    for (i = 0; i < mp->n; i++) {
        const satchel_part *p = &mp->parts[i];
        int cached = is_cached(con, mp, i);
        con_kv_item(con);
        con_kv_str(con, "part", p->section, "%-6s ");
        kv_type(con, p, "%s ");
        con_kv_str(con, "charset", p->charset, NULL);
        con_kv_str(con, "encoding", p->encoding, NULL);
        con_kv_u64(con, "size", p->size, "%u bytes");
        con_kv_bool(con, "attachment", p->attachment, p->attachment ? " attachment" : NULL);
        con_kv_str(con, "name", p->name, p->name[0] ? " \"%s\"" : NULL);
        con_kv_bool(con, "cached", cached, cached ? "\n       (cached)\n" : "\n");
        con_kv_item_end(con);
    }
    con_kv_list_end(con);
    con_kv_bool(con, "structure_cut", mp->cut, mp->cut ? CUT_NOTE : NULL);
    free(mp);
    return con_kv_end(con);
}

/* Where a part's bytes go: the console as text (decoded to UTF-8), the
 * console as bytes (a pipe) or base64 (JSON), or a file (--out). */
enum sink_kind { SINK_TEXT, SINK_BYTES, SINK_FILE };

struct print_ctx {
    satchel_console *con;
    enum sink_kind sink;
    void *file;
    int file_err;
    uint64_t written;
    satchel_body_decoder dec;
};

/* Display text uses plain newlines. */
static int emit_text(void *ctx, const char *utf8, size_t len)
{
    struct print_ctx *pc = ctx;
    while (len > 0) {
        const char *cr = memchr(utf8, '\r', len);
        size_t n = cr ? (size_t)(cr - utf8) : len;
        con_kv_stream(pc->con, utf8, n, 0);
        pc->written += n;
        if (!cr)
            break;
        utf8 += n + 1;
        len -= n + 1;
    }
    return 0;
}

/* Bytes as they are: to a file, as base64 in JSON, or raw to a pipe (the
 * writer escapes them for a terminal). */
static int emit_bytes(void *ctx, const char *data, size_t len)
{
    struct print_ctx *pc = ctx;
    satchel_console *con = pc->con;
    pc->written += len;
    if (pc->sink == SINK_FILE) {
        if (con->files->write(pc->file, data, len) < 0) {
            pc->file_err = 1;
            return SATCHEL_E_RANGE;
        }
    } else if (con->json) {
        con_kv_b64(con, (const uint8_t *)data, len);
    } else {
        con_kv_stream(con, data, len, 1);
    }
    return 0;
}

static int decode_chunk(void *ctx, const uint8_t *data, size_t len)
{
    struct print_ctx *pc = ctx;
    return satchel_body_decoder_feed(&pc->dec, data, len,
                                     pc->sink == SINK_TEXT ? emit_text : emit_bytes, pc);
}

static int raw_chunk(void *ctx, const uint8_t *data, size_t len)
{
    struct print_ctx *pc = ctx;
    if (pc->sink == SINK_FILE)
        return emit_bytes(ctx, (const char *)data, len);
    con_kv_stream(pc->con, (const char *)data, len, 1);
    pc->written += len;
    return 0;
}

#define BODY_USAGE "usage: body FOLDER UID [PART] [--raw] [--out FILE]"

static int cmd_body(satchel_console *con, int argc, char **argv)
{
    struct msg_parts *mp;
    struct print_ctx *pc;
    satchel_app *app = con->app;
    const satchel_part *p = NULL;
    const char *want = NULL, *out_path = NULL;
    uint32_t uid;
    int raw = 0, i, rc, known = 1, hit, text;
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--raw") == 0)
            raw = 1;
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc && !out_path)
            out_path = argv[++i];
        else if (!want && argv[i][0] != '-')
            want = argv[i];
        else
            return con_error(con, SATCHEL_E_INVAL, BODY_USAGE);
    }
    if (out_path && !con->files)
        return con_error(con, SATCHEL_E_NOTSUP, "--out: this console cannot write files");
    mp = malloc(sizeof *mp);
    pc = malloc(sizeof *pc);
    if (!mp || !pc) {
        free(mp);
        free(pc);
        return con_error(con, SATCHEL_E_NOMEM, "out of memory");
    }
    memset(pc, 0, sizeof *pc);
    if ((rc = load_parts(con, argv[1], argv[2], mp)) < 0)
        goto out;
    uid = app->scratch_msg.uid;
    if (want) {
        for (i = 0; i < (int)mp->n; i++)
            if (strcmp(mp->parts[i].section, want) == 0)
                p = &mp->parts[i];
        if (!p) {
            rc = con_error(con, SATCHEL_E_NOTFOUND, "message %u has no part %s",
                           (unsigned)uid, want);
            goto out;
        }
    } else {
        i = satchel_body_pick_text(mp->parts, mp->n);
        if (i < 0) {
            rc = con_error(con, SATCHEL_E_NOTFOUND,
                           "message %u has no text part (see parts)", (unsigned)uid);
            goto out;
        }
        p = &mp->parts[i];
    }
    /* Only text is converted to UTF-8; any other part is its bytes. */
    text = strcmp(p->type, "text") == 0 && !raw;
    pc->con = con;
    pc->sink = out_path ? SINK_FILE : text ? SINK_TEXT : SINK_BYTES;
    if (pc->sink == SINK_BYTES && !raw && !con->json && con->tty) {
        rc = con_error(con, SATCHEL_E_INVAL,
                       "part %s is %s/%s, not text: write it with --out FILE or "
                       "to a pipe", p->section, p->type, p->subtype);
        goto out;
    }
    rc = satchel_app_body_ensure(app, &mp->f, uid, p->section, p->size, &hit);
    if (rc < 0) {
        rc = con_error(con, rc, "%s", app->last_error);
        goto out;
    }
    if (out_path && !(pc->file = con->files->open(con->files->ctx, out_path))) {
        rc = con_error(con, SATCHEL_E_INVAL, "--out: cannot create %s", out_path);
        goto out;
    }
    if (text)
        known = satchel_body_decoder_init(&pc->dec, p->encoding, p->charset);
    else
        satchel_body_decoder_init_bytes(&pc->dec, p->encoding);
    con_kv_begin(con);
    con_kv_str(con, "folder", mp->f.name, NULL);
    con_kv_u64(con, "uid", uid, NULL);
    con_kv_str(con, "part", p->section, NULL);
    kv_type(con, p, NULL);
    con_kv_str(con, "charset", p->charset,
               text && !known && !out_path
                   ? "[charset %s is not supported: raw bytes shown]\n" : NULL);
    con_kv_bool(con, "from_cache", hit, NULL);
    if (mp->cut)
        con_kv_bool(con, "structure_cut", 1, NULL);
    if (!hit) {
        con_kv_u64(con, "fetch_ms", app->session_ms, NULL);
        con_kv_u64(con, "ttfb_ms", app->ttfb_ms, NULL);
        con_kv_u64(con, "bytes_in", app->last.bytes_in, NULL);
    }
    if (text && !known)
        con_kv_bool(con, "charset_supported", 0, NULL);
    {
        /* A download ends by what the server sends, not by BODYSTRUCTURE's
         * size (GNU imap4d gives line counts there for some parts): the
         * record keeps both, and a difference is said every time. */
        satchel_body_info bi;
        if (satchel_store_body_info(app->store, NULL, mp->f.id, uid, p->section, &bi) == 0 &&
            bi.complete && bi.expected && bi.stored != bi.expected) {
            con_kv_u64(con, "size_announced", bi.expected,
                       "[BODYSTRUCTURE gave this part %u bytes, ");
            con_kv_u64(con, "size_received", bi.stored,
                       "the server sent %u: shown as received]\n");
        }
    }
    if (pc->sink == SINK_TEXT)
        con_kv_stream_begin(con, "text");
    else if (pc->sink == SINK_BYTES && raw)
        con_kv_stream_begin(con, "raw");
    else if (pc->sink == SINK_BYTES)
        con_kv_b64_begin(con, "base64");
    if (raw)
        rc = satchel_store_body_read(app->store, mp->f.id, uid, p->section, raw_chunk, pc);
    else
        rc = satchel_store_body_read(app->store, mp->f.id, uid, p->section, decode_chunk,
                                     pc);
    if (rc == 0 && !raw)
        rc = satchel_body_decoder_finish(&pc->dec,
                                         pc->sink == SINK_TEXT ? emit_text : emit_bytes, pc);
    if (pc->file && con->files->close(pc->file) < 0)
        pc->file_err = 1;
    if (pc->file_err) {
        rc = con_error(con, SATCHEL_E_IO, "--out: cannot write all of %s", out_path);
        goto out;
    }
    if (rc < 0) {
        rc = con_error(con, rc, "cannot read cached body: %s", satchel_strerror(rc));
        goto out;
    }
    if (pc->sink == SINK_BYTES && !raw)
        con_kv_b64_end(con);
    else if (pc->sink != SINK_FILE)
        con_kv_stream_end(con);
    if (out_path) {
        con_kv_u64(con, "bytes", pc->written, "%u bytes written to ");
        con_kv_str(con, "file", out_path, "%s\n");
    } else {
        con_kv_u64(con, "bytes", pc->written, NULL);
    }
    rc = con_kv_end(con);
out:
    free(mp);
    free(pc);
    return rc;
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
        con_kv_begin(con);
        con_kv_u64(con, "bytes", cs.bytes, "cache: %u bytes of ");
        con_kv_u64(con, "budget", cs.budget, "%u ");
        con_kv_u64(con, "entries", cs.entries, "(%u bodies), ");
        con_kv_u64(con, "hits", cs.hits, "%u hits, ");
        con_kv_u64(con, "misses", cs.misses, "%u misses, ");
        con_kv_u64(con, "evictions", cs.evictions, "%u evictions, ");
        con_kv_u64(con, "pinned", cs.pinned, "%u pinned\n");
        return con_kv_end(con);
    }
    if (strcmp(argv[1], "evict") == 0) {
        if (argc > 4)
            return con_error(con, SATCHEL_E_INVAL, "usage: cache evict [FOLDER [UID]]");
        memset(&f, 0, sizeof f);
        if (argc >= 3 && (rc = con_get_folder(con, argv[2], &f)) < 0)
            return rc;
        if (argc == 4 && (con_parse_u32(argv[3], &uid) < 0 || uid == 0))
            return con_error(con, SATCHEL_E_INVAL, "bad UID '%s'", argv[3]);
    } else if (strcmp(argv[1], "pin") == 0 || strcmp(argv[1], "unpin") == 0) {
        if (argc != 4)
            return con_error(con, SATCHEL_E_INVAL, "usage: cache %s FOLDER UID", argv[1]);
        if ((rc = con_get_folder(con, argv[2], &f)) < 0)
            return rc;
        if (con_parse_u32(argv[3], &uid) < 0 || uid == 0)
            return con_error(con, SATCHEL_E_INVAL, "bad UID '%s'", argv[3]);
        if (satchel_store_msg_get(app->store, NULL, f.id, uid, &app->scratch_msg) < 0)
            return con_error(con, SATCHEL_E_NOTFOUND, "no message with UID %u in %s",
                             (unsigned)uid, f.name);
    } else {
        return con_error(con, SATCHEL_E_INVAL,
                         "usage: cache [evict [FOLDER [UID]] | pin FOLDER UID | "
                         "unpin FOLDER UID]");
    }
    rc = argv[1][0] == 'e' ? satchel_store_begin_reserve(app->store, &t)
                           : satchel_store_begin(app->store, &t);
    if (rc < 0)
        return con_error(con, rc, "store busy: %s", satchel_strerror(rc));
    if (argv[1][0] == 'e')
        rc = satchel_store_body_evict(t, f.id, uid, NULL, &n);
    else
        rc = satchel_store_pin(t, f.id, uid, argv[1][0] == 'p');
    if (rc < 0) {
        satchel_store_abort(t);
        return con_error(con, rc, "cache %s failed: %s", argv[1], satchel_strerror(rc));
    }
    if ((rc = satchel_store_commit(t)) < 0)
        return con_error(con, rc, "cache %s failed: %s", argv[1], satchel_strerror(rc));
    con_kv_begin(con);
    con_kv_bool(con, "ok", 1, NULL);
    if (argv[1][0] == 'e') {
        con_kv_str(con, "action", argv[1], NULL);
        con_kv_u64(con, "evicted", n, "evicted %u bodies\n");
    } else {
        con_kv_str(con, "action", argv[1], argv[1][0] == 'p' ? "pinned\n" : "unpinned\n");
    }
    return con_kv_end(con);
}

const satchel_console_cmd satchel_console_cmds_mail[] = {
    {"folders", "folders", "folders in the store with counts", 0, 0, cmd_folders},
    {"list", "list FOLDER [OFFSET [COUNT]]", "messages, newest first", 1, 3,
     cmd_list},
    {"show", "show FOLDER UID", "one message's stored headers", 2, 2, cmd_show},
    {"parts", "parts FOLDER UID", "MIME parts with type, name, size, cached", 2, 2,
     cmd_parts},
    {"body", "body FOLDER UID [PART] [--raw] [--out FILE]",
     "the text part, or PART (bytes unless text); fetched on demand into the cache",
     2, 6, cmd_body},
    {"cache", "cache [evict [FOLDER [UID]] | pin FOLDER UID | unpin FOLDER UID]",
     "body cache statistics and control", 0, 3, cmd_cache},
    {NULL, NULL, NULL, 0, 0, NULL},
};
