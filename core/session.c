/* The IMAP session: greeting, capabilities, STARTTLS, authentication,
 * ENABLE, LOGOUT, dispatch of responses to the jobs, and the public
 * recv/pending/sent/want/tick API. */
#include "client_internal.h"

#include <string.h>

/* ---------- small helpers ---------- */

void cl_set_error(satchel_client *c, int rc, const char *what,
                      const char *detail, size_t dlen)
{
    size_t n = 0, i;
    const char *s = what;
    while (*s && n + 1 < sizeof c->err_text)
        c->err_text[n++] = *s++;
    if (detail && dlen && n + 3 < sizeof c->err_text) {
        c->err_text[n++] = ':';
        c->err_text[n++] = ' ';
        /* Server text is untrusted: keep printable ASCII and UTF-8 only. */
        for (i = 0; i < dlen && n + 1 < sizeof c->err_text; i++) {
            unsigned char ch = (unsigned char)detail[i];
            c->err_text[n++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
        }
    }
    c->err_text[n] = '\0';
    if (rc < 0 && c->job_rc == 0)
        c->job_rc = rc;
}

void cl_emit(satchel_client *c, satchel_event *ev)
{
    if (c->ev_cb)
        c->ev_cb(c->ev_ctx, ev);
}

int cl_fail(satchel_client *c, int rc, const char *what)
{
    if (!c->failed) {
        cl_set_error(c, rc, what, NULL, 0);
        if (c->job_rc == 0)
            c->job_rc = rc;
    }
    c->failed = 1;
    c->ph = PH_CLOSED;
    if (c->txn) {
        satchel_store_abort(c->txn);
        c->txn = NULL;
    }
    if (c->job != J_NONE && c->job != J_DONE) {
        c->interrupted = 1; /* the next connection may resume it */
        c->window_cut = c->job == J_WINDOWS;
    }
    if (c->job != J_NONE)
        c->job = J_DONE;
    return rc;
}

static void base64_encode(const uint8_t *in, size_t n, char *out)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = tbl[v >> 6 & 63];
        out[o++] = tbl[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* ---------- capabilities ---------- */

static const struct {
    const char *name;
    uint32_t bit;
} cap_names[] = {
    {"IMAP4REV1", SATCHEL_CAP_IMAP4REV1}, {"IMAP4REV2", SATCHEL_CAP_IMAP4REV2},
    {"STARTTLS", SATCHEL_CAP_STARTTLS},   {"LOGINDISABLED", SATCHEL_CAP_LOGINDISABLED},
    {"AUTH=PLAIN", SATCHEL_CAP_AUTH_PLAIN}, {"SASL-IR", SATCHEL_CAP_SASL_IR},
    {"CONDSTORE", SATCHEL_CAP_CONDSTORE}, {"QRESYNC", SATCHEL_CAP_QRESYNC},
    {"ENABLE", SATCHEL_CAP_ENABLE},       {"SPECIAL-USE", SATCHEL_CAP_SPECIAL_USE},
    {"LIST-EXTENDED", SATCHEL_CAP_LIST_EXTENDED}, {"MOVE", SATCHEL_CAP_MOVE},
    {"UIDPLUS", SATCHEL_CAP_UIDPLUS},     {"LITERAL+", SATCHEL_CAP_LITERAL_PLUS},
    {"LITERAL-", SATCHEL_CAP_LITERAL_MINUS}, {"IDLE", SATCHEL_CAP_IDLE},
    {"ESEARCH", SATCHEL_CAP_ESEARCH},     {"PREVIEW", SATCHEL_CAP_PREVIEW},
    {"NAMESPACE", SATCHEL_CAP_NAMESPACE}, {"LIST-STATUS", SATCHEL_CAP_LIST_STATUS},
};

static void read_caps(satchel_client *c, const satchel_imap_arg *a)
{
    uint32_t caps = 0;
    size_t i;
    for (; a; a = a->next)
        for (i = 0; i < sizeof cap_names / sizeof cap_names[0]; i++)
            if (satchel_imap_arg_is(a, cap_names[i].name))
                caps |= cap_names[i].bit;
    /* QRESYNC implies CONDSTORE (RFC 7162 section 3.2.3). */
    if (caps & SATCHEL_CAP_QRESYNC)
        caps |= SATCHEL_CAP_CONDSTORE;
    c->caps = caps & ~c->disable_caps;
    c->caps_known = 1;
}

/* ---------- store transaction ---------- */

int cl_txn(satchel_client *c)
{
    int rc;
    if (c->txn)
        return 0;
    rc = satchel_store_begin(c->store, &c->txn);
    if (rc < 0)
        return cl_fail(c, rc, "cannot begin a store transaction");
    return 0;
}

int cl_commit(satchel_client *c, int write_folder)
{
    int rc = 0;
    if (!c->txn)
        return 0;
    if (write_folder)
        rc = satchel_store_folder_put(c->txn, &c->fs.f);
    if (rc < 0) {
        satchel_store_abort(c->txn);
        c->txn = NULL;
        return cl_fail(c, rc, "cannot write folder record");
    }
    rc = satchel_store_commit(c->txn);
    c->txn = NULL;
    if (rc < 0)
        return cl_fail(c, rc, "store commit failed");
    return 0;
}

/* ---------- untagged dispatch ---------- */

static int on_untagged(satchel_client *c, const satchel_imap_resp *r)
{
    const satchel_imap_arg *a = r->args;
    uint32_t num;

    if (r->status != SATCHEL_STATUS_NONE) {
        const satchel_imap_arg *code = r->code;
        if (r->status == SATCHEL_STATUS_BYE) {
            if (c->ph != PH_LOGOUT)
                cl_set_error(c, SATCHEL_E_IO, "server closed the session",
                             r->text, r->text_len);
            return 0;
        }
        if (code && satchel_imap_arg_is(code, "ALERT") && c->ph == PH_AUTHED) {
            satchel_event ev;
            memset(&ev, 0, sizeof ev);
            ev.type = SATCHEL_EV_ALERT;
            ev.text = r->text;
            cl_emit(c, &ev);
        }
        /* Data in response codes is trusted only once authenticated over
         * the chosen security: nothing before that changes state, except
         * capabilities that are re-read after STARTTLS anyway. */
        if (code && c->job == J_REPLAY_SELECT &&
            satchel_imap_arg_is(code, "UIDVALIDITY"))
            satchel_imap_arg_u32(code->next, &c->rp.uidvalidity);
        if (code && c->job == J_REPLAY_OPS && satchel_imap_arg_is(code, "COPYUID"))
            replay_copyuid(c, code);
        if (code && c->job == J_SELECT) {
            if (satchel_imap_arg_is(code, "UIDVALIDITY"))
                satchel_imap_arg_u32(code->next, &c->fs.uidvalidity);
            else if (satchel_imap_arg_is(code, "UIDNEXT"))
                satchel_imap_arg_u32(code->next, &c->fs.uidnext);
            else if (satchel_imap_arg_is(code, "HIGHESTMODSEQ"))
                satchel_imap_arg_u64(code->next, UINT64_MAX, &c->fs.hms);
            else if (satchel_imap_arg_is(code, "NOMODSEQ"))
                c->fs.nomodseq = 1;
        }
        return 0;
    }
    if (!a)
        return 0;
    if (satchel_imap_arg_is(a, "CAPABILITY")) {
        if (cl_count_inflight(c, K_CAPABILITY))
            read_caps(c, a->next);
        return 0;
    }
    if (c->ph != PH_AUTHED)
        return 0; /* nothing else counts before authentication */
    if (satchel_imap_arg_is(a, "LIST")) {
        if (cl_count_inflight(c, K_LIST))
            return list_on_list(c, a);
        return 0;
    }
    if (satchel_imap_arg_is(a, "VANISHED"))
        return sync_on_vanished(c, a);
    if (satchel_imap_arg_is(a, "STATUS")) {
        if (cl_count_inflight(c, K_LIST))
            list_on_status(c, a);
        return 0;
    }
    if (satchel_imap_arg_is(a, "SEARCH")) {
        if (c->job == J_REPLAY_VERIFY && cl_count_inflight(c, K_RVSEARCH) && a->next) {
            c->rp.verify_found = 1;
            if (satchel_imap_arg_u32(a->next, &c->rp.found_uid) < 0)
                c->rp.found_uid = 0;
        }
        return 0;
    }
    if (satchel_imap_arg_is(a, "ENABLED")) {
        for (a = a->next; a; a = a->next)
            if (satchel_imap_arg_is(a, "QRESYNC"))
                c->qresync_on = 1;
        return 0;
    }
    if (satchel_imap_arg_u32(a, &num) == 0 && a->next) {
        const satchel_imap_arg *w = a->next;
        if (satchel_imap_arg_is(w, "EXISTS")) {
            if (c->job == J_SELECT)
                c->fs.exists = num;
        } else if (satchel_imap_arg_is(w, "EXPUNGE")) {
            /* Sequence-numbered expunge: we do not map sequence numbers to
             * UIDs, so let the next sync reconcile. */
            if (c->job == J_FOLLOW || c->job == J_WINDOWS || c->job == J_SELECT)
                c->fs.incomplete = 1;
        } else if (satchel_imap_arg_is(w, "FETCH")) {
            return sync_on_fetch(c, a, r->truncated);
        }
    }
    return 0;
}

int cl_job_advance(satchel_client *c)
{
    int rc;
    satchel_folder f;
    if (c->ph != PH_AUTHED || c->failed)
        return 0;
    switch (c->job) {
    case J_QUEUED:
        if (c->resuming) {
            /* Folders this job already finished stay finished. */
            c->resuming = 0;
            if (c->job_all && c->done_cursor[0]) {
                c->want_replay = 0;
                c->job = J_LIST;
                rc = list_send(c);
                memcpy(c->cursor, c->done_cursor, sizeof c->cursor);
                return rc < 0 ? cl_fail(c, rc, "command buffer overflow") : 0;
            }
        }
        if (c->want_replay) {
            uint64_t pending = 0, failed = 0;
            c->want_replay = 0;
            satchel_store_queue_counts(c->store, &pending, &failed);
            if (pending) {
                c->rp.selected[0] = '\0';
                return replay_mkdirs(c);
            }
        }
        c->cursor[0] = '\0';
        /* A single folder already known needs no LIST. */
        if (!c->job_all &&
            satchel_store_folder_get(c->store, NULL, c->job_folder, &f) == 0 &&
            !(f.flags & SATCHEL_FOLDER_NOSELECT)) {
            c->job = J_NEXT_FOLDER;
            return cl_job_advance(c);
        }
        c->job = J_LIST;
        rc = list_send(c);
        return rc < 0 ? cl_fail(c, rc, "command buffer overflow") : 0;
    case J_NEXT_FOLDER:
        if (c->n_inflight > (uint32_t)cl_count_inflight(c, K_ENABLE))
            return 0;
        return sync_next_folder(c);
    case J_BODY_SELECT:
        if (c->n_inflight > (uint32_t)cl_count_inflight(c, K_ENABLE))
            return 0;
        if ((rc = cl_cmd_begin(c, K_SELECT)) < 0 || (rc = cl_out_str(c, "SELECT ")) < 0 ||
            (rc = cl_out_astring(c, c->job_folder)) < 0 || (rc = cl_cmd_end(c)) < 0)
            return cl_fail(c, rc == SATCHEL_E_NOTSUP ? rc : SATCHEL_E_RANGE,
                           "cannot send SELECT");
        return 0;
    default:
        return 0;
    }
}

static int start_authenticated(satchel_client *c)
{
    int rc;
    c->ph = PH_AUTHED;
    c->authed_started = 1;
    if ((c->caps & SATCHEL_CAP_QRESYNC) && (c->caps & SATCHEL_CAP_ENABLE) &&
        !c->qresync_on) {
        /* Pipelined with whatever the job sends next. */
        if ((rc = cl_simple_cmd(c, K_ENABLE, "ENABLE QRESYNC")) < 0)
            return cl_fail(c, rc, "command buffer overflow");
        /* RFC 5161 lets ENABLE be pipelined; a refusal turns it off again
         * before any SELECT relies on it being granted. */
        c->qresync_on = 1;
    }
    return cl_job_advance(c);
}

/* ---------- session set-up ---------- */

static int send_auth(satchel_client *c)
{
    int rc;
    if (!c->tls_active && c->security != SATCHEL_SECURITY_NONE)
        return cl_fail(c, SATCHEL_E_SECURITY,
                       "refusing to authenticate without TLS");
    c->auth_sent = 1;
    if (c->caps & SATCHEL_CAP_AUTH_PLAIN) {
        /* RFC 4616: authzid NUL authcid NUL passwd, base64. */
        uint8_t raw[MAX_USER + MAX_PASS + 2];
        char b64[((MAX_USER + MAX_PASS + 2) / 3 + 1) * 4 + 1];
        size_t ul = strlen(c->user), pl = strlen(c->pass);
        raw[0] = 0;
        memcpy(raw + 1, c->user, ul);
        raw[1 + ul] = 0;
        memcpy(raw + 2 + ul, c->pass, pl);
        base64_encode(raw, ul + pl + 2, b64);
        wipe(raw, sizeof raw);
        if ((rc = cl_cmd_begin(c, K_AUTH)) < 0 ||
            (rc = cl_out_str(c, "AUTHENTICATE PLAIN")) < 0)
            goto out;
        if (c->caps & SATCHEL_CAP_SASL_IR) {
            if ((rc = cl_out_str(c, " ")) < 0 || (rc = cl_out_str(c, b64)) < 0)
                goto out;
        }
        rc = cl_cmd_end(c);
    out:
        wipe(b64, sizeof b64);
        return rc < 0 ? cl_fail(c, rc, "command buffer overflow") : 0;
    }
    if (c->caps & SATCHEL_CAP_LOGINDISABLED)
        return cl_fail(c, SATCHEL_E_AUTH, "server offers no usable login method");
    if ((rc = cl_cmd_begin(c, K_LOGIN)) < 0 || (rc = cl_out_str(c, "LOGIN ")) < 0 ||
        (rc = cl_out_astring(c, c->user)) < 0 || (rc = cl_out_str(c, " ")) < 0 ||
        (rc = cl_out_astring(c, c->pass)) < 0 || (rc = cl_cmd_end(c)) < 0)
        return cl_fail(c, rc, "cannot send LOGIN");
    return 0;
}

static int preauth_advance(satchel_client *c)
{
    if (c->n_inflight)
        return 0;
    if (!c->caps_known)
        return cl_simple_cmd(c, K_CAPABILITY, "CAPABILITY");
    if (!c->tls_active) {
        if (c->security == SATCHEL_SECURITY_STARTTLS) {
            if (!(c->caps & SATCHEL_CAP_STARTTLS))
                return cl_fail(c, SATCHEL_E_SECURITY,
                               "server does not offer STARTTLS; not logging in");
            return cl_simple_cmd(c, K_STARTTLS, "STARTTLS");
        }
        if (c->security != SATCHEL_SECURITY_NONE)
            return cl_fail(c, SATCHEL_E_SECURITY, "connection is not encrypted");
    }
    if (!c->auth_sent)
        return send_auth(c);
    return 0;
}


static int on_tagged(satchel_client *c, const satchel_imap_resp *r)
{
    uint32_t tag = 0, i;
    const char *t = r->tag;
    uint8_t kind = K_NONE;
    uint64_t arg;
    int ok = r->status == SATCHEL_STATUS_OK;

    if (t[0] == 'S') {
        for (t++; *t >= '0' && *t <= '9' && tag < 100000000u; t++)
            tag = tag * 10u + (uint32_t)(*t - '0');
        if (*t)
            tag = 0;
    }
    for (i = 0; i < c->n_inflight; i++)
        if (c->inflight[i].tag == tag)
            break;
    if (tag == 0 || i == c->n_inflight)
        return cl_fail(c, SATCHEL_E_PROTO, "server answered a command never sent");
    kind = c->inflight[i].kind;
    arg = c->inflight[i].arg;
    if (kind == K_RCMD && ok && r->code && satchel_imap_arg_is(r->code, "COPYUID"))
        replay_copyuid(c, r->code);
    cl_remove_inflight(c, i);
    c->last_activity = c->now;

    switch (kind) {
    case K_CAPABILITY:
        if (!ok || !c->caps_known)
            return cl_fail(c, SATCHEL_E_PROTO, "CAPABILITY failed");
        if (c->ph == PH_PREAUTH)
            return preauth_advance(c);
        if (c->ph == PH_AUTHED && !c->authed_started)
            return start_authenticated(c); /* caps after login: ENABLE now */
        return cl_job_advance(c);
    case K_STARTTLS:
        if (!ok) {
            cl_set_error(c, SATCHEL_E_SECURITY, "server refused STARTTLS", r->text,
                         r->text_len);
            return cl_fail(c, SATCHEL_E_SECURITY, c->err_text);
        }
        c->ph = PH_TLS;
        c->want_starttls = 1;
        return 0;
    case K_AUTH:
    case K_LOGIN:
        if (!ok) {
            cl_set_error(c, SATCHEL_E_AUTH, "login refused", r->text, r->text_len);
            c->failed = 1;
            c->ph = PH_CLOSED;
            if (c->job != J_NONE)
                c->job = J_DONE;
            return SATCHEL_E_AUTH;
        }
        c->caps_known = 0;
        if (r->code && satchel_imap_arg_is(r->code, "CAPABILITY"))
            read_caps(c, r->code->next);
        if (!c->caps_known) {
            c->ph = PH_AUTHED;
            return cl_simple_cmd(c, K_CAPABILITY, "CAPABILITY");
        }
        return start_authenticated(c);
    case K_ENABLE:
        if (!ok)
            c->qresync_on = 0;
        return 0;
    case K_LIST:
        return list_tagged(c, ok, r);
    case K_SELECT:
        if (c->job == J_BODY_SELECT)
            return body_select_tagged(c, ok, r);
        return sync_tagged(c, kind, arg, ok, r);
    case K_CHANGED:
    case K_RECONCILE:
    case K_NEWUIDS:
    case K_BLOCK:
    case K_RESUME:
    case K_WINDOW:
        return sync_tagged(c, kind, arg, ok, r);
    case K_BODYFETCH:
        return body_tagged(c, ok, r);
    case K_CREATE:
    case K_RSELECT:
    case K_RCHECK:
    case K_RCMD:
    case K_RVSELECT:
    case K_RVSEARCH:
        return replay_tagged(c, kind, arg, ok, r);
    case K_LOGOUT:
        c->ph = PH_CLOSED;
        return 0;
    default:
        return 0;
    }
}

static int on_response(satchel_client *c, const satchel_imap_resp *r)
{
    if (r->kind == SATCHEL_RESP_CONTINUE) {
        c->cont_seen = 1;
        /* Only AUTHENTICATE without SASL-IR asks to continue. */
        if (cl_count_inflight(c, K_AUTH) && !(c->caps & SATCHEL_CAP_SASL_IR)) {
            uint8_t raw[MAX_USER + MAX_PASS + 2];
            char b64[((MAX_USER + MAX_PASS + 2) / 3 + 1) * 4 + 1];
            size_t ul = strlen(c->user), pl = strlen(c->pass);
            int rc;
            raw[0] = 0;
            memcpy(raw + 1, c->user, ul);
            raw[1 + ul] = 0;
            memcpy(raw + 2 + ul, c->pass, pl);
            base64_encode(raw, ul + pl + 2, b64);
            rc = cl_out_str(c, b64);
            if (rc == 0)
                rc = cl_out_str(c, "\r\n");
            wipe(raw, sizeof raw);
            wipe(b64, sizeof b64);
            return rc < 0 ? cl_fail(c, rc, "command buffer overflow") : 0;
        }
        return cl_fail(c, SATCHEL_E_PROTO, "unexpected continuation request");
    }
    if (r->kind == SATCHEL_RESP_TAGGED)
        return on_tagged(c, r);

    if (c->ph == PH_GREETING) {
        if (r->status == SATCHEL_STATUS_OK) {
            if (r->code && satchel_imap_arg_is(r->code, "CAPABILITY"))
                read_caps(c, r->code->next);
            c->ph = PH_PREAUTH;
            return preauth_advance(c);
        }
        if (r->status == SATCHEL_STATUS_PREAUTH) {
            if (!c->tls_active && c->security != SATCHEL_SECURITY_NONE)
                return cl_fail(c, SATCHEL_E_SECURITY,
                               "PREAUTH on an unencrypted connection refused");
            c->caps_known = 0;
            if (r->code && satchel_imap_arg_is(r->code, "CAPABILITY"))
                read_caps(c, r->code->next);
            if (!c->caps_known) {
                c->ph = PH_AUTHED;
                return cl_simple_cmd(c, K_CAPABILITY, "CAPABILITY");
            }
            return start_authenticated(c);
        }
        if (r->status == SATCHEL_STATUS_BYE) {
            cl_set_error(c, SATCHEL_E_IO, "server refused the connection", r->text,
                         r->text_len);
            return cl_fail(c, SATCHEL_E_IO, c->err_text);
        }
        return cl_fail(c, SATCHEL_E_PROTO, "malformed greeting");
    }
    return on_untagged(c, r);
}

/* ---------- public API ---------- */

int satchel_client_new(const satchel_allocator *alloc,
                       const satchel_client_config *cfg, satchel_store *store,
                       satchel_client **out)
{
    satchel_client *c;
    int rc;
    *out = NULL;
    if (!alloc)
        alloc = satchel_allocator_default();
    if (!cfg || !store || !cfg->user || !cfg->password ||
        strlen(cfg->user) >= MAX_USER || strlen(cfg->password) >= MAX_PASS ||
        cfg->user[0] == '\0')
        return SATCHEL_E_INVAL;
    c = alloc->alloc(alloc->ctx, sizeof *c);
    if (!c)
        return SATCHEL_E_NOMEM;
    memset(c, 0, sizeof *c);
    c->alloc = alloc;
    c->store = store;
    c->security = cfg->security;
    c->fetch_window = cfg->fetch_window ? cfg->fetch_window : SATCHEL_OPT_FETCH_WINDOW;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : SATCHEL_OPT_TIMEOUT_MS;
    c->disable_caps = cfg->disable_caps;
    memcpy(c->user, cfg->user, strlen(cfg->user) + 1);
    memcpy(c->pass, cfg->password, strlen(cfg->password) + 1);
    rc = satchel_imap_parser_new(alloc, NULL, &c->parser);
    if (rc < 0) {
        wipe(c->pass, sizeof c->pass);
        alloc->free(alloc->ctx, c, sizeof *c);
        return rc;
    }
    satchel_imap_parser_set_sink(c->parser, body_sink, c);
    c->ph = PH_DOWN;
    *out = c;
    return 0;
}

void satchel_client_free(satchel_client *c)
{
    if (!c)
        return;
    if (c->txn)
        satchel_store_abort(c->txn);
    satchel_imap_parser_free(c->parser);
    wipe(c->pass, sizeof c->pass);
    wipe(c->out, sizeof c->out);
    c->alloc->free(c->alloc->ctx, c, sizeof *c);
}

void satchel_client_set_event_cb(satchel_client *c, satchel_event_cb cb,
                                 void *ctx)
{
    c->ev_cb = cb;
    c->ev_ctx = ctx;
}

int satchel_client_connected(satchel_client *c, uint64_t now_ms, int tls_active)
{
    if (c->txn) {
        satchel_store_abort(c->txn);
        c->txn = NULL;
    }
    satchel_imap_parser_reset(c->parser);
    c->ph = PH_GREETING;
    c->tls_active = tls_active;
    c->caps_known = 0;
    c->caps = 0;
    c->qresync_on = 0;
    c->want_starttls = 0;
    c->auth_sent = 0;
    c->authed_started = 0;
    c->failed = 0;
    c->n_inflight = 0;
    c->out_len = c->out_off = 0;
    c->out_sent = 0;
    c->cont_seen = 0;
    c->now = c->last_activity = now_ms;
    /* Waiting for the greeting is the first round trip. */
    c->ctr.round_trips++;
    /* A job interrupted by a lost connection resumes; what it committed
     * stays committed (a body from its last chunk, a sync from the last
     * completed folder and window). */
    if (c->interrupted || (c->job != J_NONE && c->job != J_DONE)) {
        c->interrupted = 0;
        c->job_rc = 0;
        c->err_text[0] = '\0';
        c->job = c->job_kind == 2 ? J_BODY_SELECT : J_QUEUED;
        c->resuming = 1;
        /* A window that did not fit in the connection: smaller ones may. */
        if (c->window_cut && c->fetch_window > 16)
            c->fetch_window /= 2;
        c->window_cut = 0;
    }
    if (c->job == J_BODY_FETCH || c->job == J_BODY_SELECT) {
        satchel_body_info bi;
        c->job = J_BODY_SELECT;
        c->body.written = c->body.chunk_len = 0;
        c->body.done = c->body.retry = c->body.seen = 0;
        if (satchel_store_body_info(c->store, NULL, c->body.fid, c->body.uid,
                                    c->body.section, &bi) == 0)
            c->body.committed = bi.stored;
        c->body.next_req = c->body.committed;
    } else if (c->job != J_NONE && c->job != J_DONE) {
        c->job = J_QUEUED;
        c->want_replay = 1;
    }
    return 0;
}

int satchel_client_recv(satchel_client *c, const uint8_t *data, size_t len,
                        uint64_t now_ms)
{
    c->now = now_ms;
    while (len > 0) {
        const satchel_imap_resp *r;
        size_t used = 0;
        int rc;
        if (c->ph == PH_CLOSED || c->ph == PH_DOWN)
            return c->failed ? c->job_rc : 0;
        if (c->ph == PH_TLS) {
            /* Bytes after "OK Begin TLS" but before the handshake were sent
             * in the clear by someone: never act on them. */
            c->ctr.bytes_in += len;
            return 0;
        }
        rc = satchel_imap_parser_feed(c->parser, data, len, &used, &r);
        c->ctr.bytes_in += used;
        data += used;
        len -= used;
        c->last_activity = now_ms;
        if (rc < 0) {
            cl_set_error(c, rc, "malformed server response",
                         satchel_imap_parser_error(c->parser),
                         strlen(satchel_imap_parser_error(c->parser)));
            cl_fail(c, rc, c->err_text);
            return rc;
        }
        if (rc == 1) {
            rc = on_response(c, r);
            if (rc < 0 && SATCHEL_ERR_IS_FATAL(rc))
                return rc;
            if (c->failed)
                return c->job_rc ? c->job_rc : rc;
        }
    }
    return 0;
}

void satchel_client_closed(satchel_client *c, int err)
{
    if (c->ph == PH_LOGOUT || (c->ph == PH_CLOSED && !c->failed &&
                               c->job != J_QUEUED && c->n_inflight == 0)) {
        c->ph = PH_DOWN;
        return;
    }
    if (!c->failed)
        cl_fail(c, err < 0 ? err : SATCHEL_E_IO,
                "connection closed by the server");
    c->ph = PH_DOWN;
}

size_t satchel_client_pending(satchel_client *c, const uint8_t **data)
{
    *data = c->out + c->out_off;
    return c->out_len - c->out_off;
}

/* A flight starts when bytes leave while nothing sent before is unanswered:
 * every command still in flight begins at or after this point, or a "+"
 * answered what was sent.  The port hands all received bytes to
 * satchel_client_recv, which parses them before it returns, so "answered"
 * here includes everything the port has received. */
static int flight_starts(const satchel_client *c)
{
    uint32_t i;
    if (c->cont_seen)
        return 1;
    for (i = 0; i < c->n_inflight; i++)
        if (c->inflight[i].at < c->out_sent)
            return 0;
    return 1;
}

void satchel_client_sent(satchel_client *c, size_t n)
{
    if (n > c->out_len - c->out_off)
        n = c->out_len - c->out_off;
    if (n > 0 && flight_starts(c))
        c->ctr.round_trips++;
    c->cont_seen = 0;
    c->out_sent += n;
    c->out_off += n;
    c->ctr.bytes_out += n;
    if (c->out_off == c->out_len) {
        wipe(c->out, c->out_len); /* may have held credentials */
        c->out_off = c->out_len = 0;
    }
}

int satchel_client_starttls_done(satchel_client *c)
{
    if (c->ph != PH_TLS)
        return SATCHEL_E_INVAL;
    satchel_imap_parser_reset(c->parser);
    c->want_starttls = 0;
    c->tls_active = 1;
    c->caps_known = 0; /* RFC 9051 6.2.1: capabilities before TLS are void */
    c->caps = 0;
    c->ph = PH_PREAUTH;
    return preauth_advance(c);
}

int satchel_client_want(const satchel_client *c)
{
    int w = 0;
    if (c->out_len > c->out_off)
        w |= SATCHEL_WANT_WRITE;
    if (c->want_starttls && c->out_len == c->out_off)
        return SATCHEL_WANT_STARTTLS;
    if (c->ph == PH_CLOSED || c->ph == PH_DOWN)
        return w ? w : SATCHEL_WANT_CLOSE;
    return w | SATCHEL_WANT_READ;
}

int satchel_client_tick(satchel_client *c, uint64_t now_ms)
{
    c->now = now_ms;
    if ((c->n_inflight || c->ph == PH_GREETING) &&
        now_ms - c->last_activity > c->timeout_ms)
        return cl_fail(c, SATCHEL_E_TIMEOUT, "server did not answer in time");
    return 0;
}

uint32_t satchel_client_next_timeout(const satchel_client *c, uint64_t now_ms)
{
    uint64_t due;
    if (!(c->n_inflight || c->ph == PH_GREETING))
        return UINT32_MAX;
    due = c->last_activity + c->timeout_ms;
    return due > now_ms ? (uint32_t)(due - now_ms) : 0;
}


int satchel_client_interrupted(const satchel_client *c)
{
    return c->interrupted;
}

int satchel_client_idle(const satchel_client *c)
{
    return c->ph == PH_AUTHED && c->n_inflight == 0 &&
           (c->job == J_NONE || c->job == J_DONE);
}

int satchel_client_logout(satchel_client *c)
{
    int rc;
    if (c->ph != PH_AUTHED && c->ph != PH_PREAUTH)
        return SATCHEL_E_INVAL;
    rc = cl_simple_cmd(c, K_LOGOUT, "LOGOUT");
    if (rc == 0)
        c->ph = PH_LOGOUT;
    return rc;
}

int satchel_client_result(const satchel_client *c)
{
    return c->job_rc;
}

const char *satchel_client_error_text(const satchel_client *c)
{
    return c->err_text[0] ? c->err_text : satchel_strerror(c->job_rc);
}

void satchel_client_get_counters(const satchel_client *c, satchel_counters *out)
{
    *out = c->ctr;
}

void satchel_client_replay_counts(const satchel_client *c, uint32_t *done,
                                  uint32_t *failed)
{
    *done = c->rp.done;
    *failed = c->rp.failed;
}

uint32_t satchel_client_caps(const satchel_client *c)
{
    return c->caps;
}

int satchel_client_tls_active(const satchel_client *c)
{
    return c->tls_active;
}
