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
    if (!c->conn.failed) {
        cl_set_error(c, rc, what, NULL, 0);
        if (c->job_rc == 0)
            c->job_rc = rc;
    }
    c->conn.failed = 1;
    c->conn.ph = PH_CLOSED;
    cl_out_discard(c); /* nothing more goes out on this connection */
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
    {"UTF8=ACCEPT", SATCHEL_CAP_UTF8_ACCEPT},
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
    c->conn.caps = caps & ~c->disable_caps;
    c->conn.caps_known = 1;
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
    {
        cl_set_error(c, rc, "store commit failed", satchel_strerror(rc),
                     strlen(satchel_strerror(rc)));
        return cl_fail(c, rc, c->err_text);
    }
    return 0;
}

/* ---------- untagged dispatch ---------- */

/* The job that owns the client's current state, if any. */
static const struct cl_job *running_job(const satchel_client *c)
{
    switch (c->job) {
    case J_LIST:
        return &cl_job_list;
    case J_NEXT_FOLDER:
    case J_SELECT:
    case J_FOLLOW:
    case J_WINDOWS:
        return &cl_job_sync;
    case J_BODY_SELECT:
    case J_BODY_FETCH:
        return &cl_job_body;
    case J_REPLAY_MKDIR:
        return &cl_job_mkdir;
    case J_REPLAY_SELECT:
    case J_REPLAY_OPS:
    case J_REPLAY_VERIFY:
        return &cl_job_replay;
    default:
        return NULL;
    }
}

/* The job whose command a tag answers. */
static const struct cl_job *kind_job(uint8_t kind)
{
    switch (kind) {
    case K_LIST:
    case K_STATUS:
        return &cl_job_list;
    case K_SELECT:
    case K_CHANGED:
    case K_RECONCILE:
    case K_NEWUIDS:
    case K_WINDOW:
    case K_RESUME:
    case K_BLOCK:
        return &cl_job_sync;
    case K_BSELECT:
    case K_BODYFETCH:
        return &cl_job_body;
    case K_CREATE:
    case K_CREATE_LIST:
        return &cl_job_mkdir;
    case K_RSELECT:
    case K_RCHECK:
    case K_RCMD:
    case K_RVSELECT:
    case K_RVSEARCH:
    case K_RDELETED:
    case K_REXPUNGE:
    case K_RGONE:
        return &cl_job_replay;
    default:
        return NULL;
    }
}

static int on_untagged(satchel_client *c, const satchel_imap_resp *r)
{
    const satchel_imap_arg *a = r->args;
    const struct cl_job *j;

    if (r->status != SATCHEL_STATUS_NONE) {
        const satchel_imap_arg *code = r->code;
        if (r->status == SATCHEL_STATUS_BYE) {
            if (c->conn.ph != PH_LOGOUT)
                cl_set_error(c, SATCHEL_E_IO, "server closed the session",
                             r->text, r->text_len);
            return 0;
        }
        if (code && satchel_imap_arg_is(code, "ALERT") && c->conn.ph == PH_AUTHED) {
            satchel_event ev;
            memset(&ev, 0, sizeof ev);
            ev.type = SATCHEL_EV_ALERT;
            ev.text = r->text;
            cl_emit(c, &ev);
        }
        /* Data in response codes is trusted only once authenticated over
         * the chosen security: nothing before that changes state, except
         * capabilities that are re-read after STARTTLS anyway. */
        if (code && c->conn.ph == PH_AUTHED && (j = running_job(c)) != NULL)
            return j->untagged(c, r);
        return 0;
    }
    if (!a)
        return 0;
    if (satchel_imap_arg_is(a, "CAPABILITY")) {
        if (cl_count_inflight(c, K_CAPABILITY))
            read_caps(c, a->next);
        return 0;
    }
    if (c->conn.ph != PH_AUTHED)
        return 0; /* nothing else counts before authentication */
    if (satchel_imap_arg_is(a, "ENABLED")) {
        for (a = a->next; a; a = a->next)
            if (satchel_imap_arg_is(a, "QRESYNC"))
                c->conn.qresync_on = c->conn.qresync_confirmed = 1;
            else if (satchel_imap_arg_is(a, "UTF8=ACCEPT"))
                c->conn.utf8_confirmed = 1;
        return 0;
    }
    if ((j = running_job(c)) != NULL)
        return j->untagged(c, r);
    return 0;
}

/* Let the running job send what it can now: after login, after a job
 * starts, and after each step it finishes. */
int cl_job_advance(satchel_client *c)
{
    if (c->conn.ph != PH_AUTHED || c->conn.failed || !c->top)
        return 0;
    return c->top->advance(c);
}

static int start_authenticated(satchel_client *c)
{
    int rc;
    c->conn.ph = PH_AUTHED;
    c->conn.authed_started = 1;
    {
        uint32_t caps = c->conn.caps;
        int q = (caps & SATCHEL_CAP_QRESYNC) && (caps & SATCHEL_CAP_ENABLE) &&
                !c->conn.qresync_on;
        int u = (caps & SATCHEL_CAP_UTF8_ACCEPT) && (caps & SATCHEL_CAP_ENABLE) &&
                !c->conn.utf8_on;
        if (q || u) {
            /* Pipelined with whatever the job sends next. */
            if ((rc = cl_simple_cmd(c, K_ENABLE,
                                    q && u ? "ENABLE QRESYNC UTF8=ACCEPT"
                                    : q    ? "ENABLE QRESYNC"
                                           : "ENABLE UTF8=ACCEPT")) < 0)
                return cl_fail(c, rc, "command does not fit the command queue");
            /* RFC 5161 lets ENABLE be pipelined, and the server acts on it
             * before any command behind it; but nothing relies on what it
             * asks for before the answer: QRESYNC is used once ENABLED
             * names it, and a mailbox name whose UTF-8 and modified UTF-7
             * forms differ waits in the command queue until the tagged
             * answer says which form the server takes (K_ENABLE below). */
            if (q) {
                c->conn.qresync_on = 1;
                c->conn.qresync_confirmed = 0;
            }
            if (u) {
                c->conn.utf8_asked = 1;
                c->conn.utf8_confirmed = 0;
            }
        }
    }
    return cl_job_advance(c);
}

/* ---------- session set-up ---------- */

static int send_auth(satchel_client *c)
{
    int rc;
    if (!c->conn.tls_active && c->security != SATCHEL_SECURITY_NONE)
        return cl_fail(c, SATCHEL_E_SECURITY,
                       "refusing to authenticate without TLS");
    c->conn.auth_sent = 1;
    if (c->conn.caps & SATCHEL_CAP_AUTH_PLAIN) {
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
        if (c->conn.caps & SATCHEL_CAP_SASL_IR) {
            if ((rc = cl_out_str(c, " ")) < 0 || (rc = cl_out_str(c, b64)) < 0)
                goto out;
        }
        rc = cl_cmd_end(c);
    out:
        wipe(b64, sizeof b64);
        return rc < 0 ? cl_fail(c, rc, "command does not fit the command queue") : 0;
    }
    if (c->conn.caps & SATCHEL_CAP_LOGINDISABLED)
        return cl_fail(c, SATCHEL_E_AUTH, "server offers no usable login method");
    if ((rc = cl_cmd_begin(c, K_LOGIN)) < 0 || (rc = cl_out_str(c, "LOGIN ")) < 0 ||
        (rc = cl_out_astring(c, c->user)) < 0 || (rc = cl_out_str(c, " ")) < 0 ||
        (rc = cl_out_astring(c, c->pass)) < 0 || (rc = cl_cmd_end(c)) < 0)
        return cl_fail(c, rc, "cannot send LOGIN");
    return 0;
}

static int preauth_advance(satchel_client *c)
{
    if (c->conn.n_inflight)
        return 0;
    if (!c->conn.caps_known)
        return cl_simple_cmd(c, K_CAPABILITY, "CAPABILITY");
    if (!c->conn.tls_active) {
        if (c->security == SATCHEL_SECURITY_STARTTLS) {
            if (!(c->conn.caps & SATCHEL_CAP_STARTTLS))
                return cl_fail(c, SATCHEL_E_SECURITY,
                               "server does not offer STARTTLS; not logging in");
            return cl_simple_cmd(c, K_STARTTLS, "STARTTLS");
        }
        if (c->security != SATCHEL_SECURITY_NONE)
            return cl_fail(c, SATCHEL_E_SECURITY, "connection is not encrypted");
    }
    if (!c->conn.auth_sent)
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
    for (i = 0; i < c->conn.n_inflight; i++)
        if (c->conn.inflight[i].tag == tag)
            break;
    if (tag == 0 || i == c->conn.n_inflight)
        return cl_fail(c, SATCHEL_E_PROTO, "server answered a command never sent");
    /* A tag whose bytes the port has not taken yet cannot have been read:
     * believing the answer would report as done a command that then never
     * goes out. */
    if (c->conn.inflight[i].at >= c->conn.out_sent)
        return cl_fail(c, SATCHEL_E_PROTO, "server answered a command before it was sent");
    kind = c->conn.inflight[i].kind;
    if (cl_hold_drop(c, tag) < 0)
        return cl_fail(c, SATCHEL_E_PROTO,
                       "server answered a command before it was sent whole");
    arg = c->conn.inflight[i].arg;
    cl_remove_inflight(c, i);
    c->conn.last_activity = c->now;
    if (tag == c->rtt_tag) {
        /* The shortest flight bounds the link's round-trip time from
         * above; server work only lengthens the others. */
        uint64_t d = c->now - c->rtt_t;
        if (d && (c->rtt_ms == 0 || d < c->rtt_ms))
            c->rtt_ms = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
        c->rtt_tag = 0;
    }

    switch (kind) {
    case K_CAPABILITY:
        if (!ok || !c->conn.caps_known)
            return cl_fail(c, SATCHEL_E_PROTO, "CAPABILITY failed");
        if (c->conn.ph == PH_PREAUTH)
            return preauth_advance(c);
        if (c->conn.ph == PH_AUTHED && !c->conn.authed_started)
            return start_authenticated(c); /* caps after login: ENABLE now */
        return cl_job_advance(c);
    case K_STARTTLS:
        if (!ok) {
            cl_set_error(c, SATCHEL_E_SECURITY, "server refused STARTTLS", r->text,
                         r->text_len);
            return cl_fail(c, SATCHEL_E_SECURITY, c->err_text);
        }
        c->conn.ph = PH_TLS;
        c->conn.want_starttls = 1;
        return 0;
    case K_AUTH:
    case K_LOGIN:
        if (!ok) {
            cl_set_error(c, SATCHEL_E_AUTH, "login refused", r->text, r->text_len);
            c->conn.failed = 1;
            c->conn.ph = PH_CLOSED;
            if (c->job != J_NONE)
                c->job = J_DONE;
            return SATCHEL_E_AUTH;
        }
        c->conn.caps_known = 0;
        if (r->code && satchel_imap_arg_is(r->code, "CAPABILITY"))
            read_caps(c, r->code->next);
        if (!c->conn.caps_known) {
            c->conn.ph = PH_AUTHED;
            return cl_simple_cmd(c, K_CAPABILITY, "CAPABILITY");
        }
        return start_authenticated(c);
    case K_ENABLE:
        /* QRESYNC is on only once the server said so (RFC 5161: an OK
         * without ENABLED QRESYNC enabled nothing). */
        if (!ok || !c->conn.qresync_confirmed)
            c->conn.qresync_on = c->conn.qresync_confirmed = 0;
        if (c->conn.utf8_asked) {
            c->conn.utf8_on = ok && c->conn.utf8_confirmed;
            c->conn.utf8_asked = 0;
            cl_out_fill(c); /* names that waited for the answer go now */
        }
        return 0;
    case K_LOGOUT:
        c->conn.ph = PH_CLOSED;
        return 0;
    default: {
        const struct cl_job *j = kind_job(kind);
        return j ? j->tagged(c, kind, arg, ok, r) : 0;
    }
    }
}

static int on_response(satchel_client *c, const satchel_imap_resp *r)
{
    if (r->kind == SATCHEL_RESP_CONTINUE) {
        c->conn.cont_seen = 1;
        /* Only AUTHENTICATE without SASL-IR asks to continue. */
        /* A synchronizing literal waiting for the server's go-ahead. */
        if (cl_hold_release(c))
            return 0;
        if (cl_count_inflight(c, K_AUTH) && !(c->conn.caps & SATCHEL_CAP_SASL_IR)) {
            uint8_t raw[MAX_USER + MAX_PASS + 2];
            char b64[((MAX_USER + MAX_PASS + 2) / 3 + 1) * 4 + 1];
            size_t ul = strlen(c->user), pl = strlen(c->pass);
            int rc;
            raw[0] = 0;
            memcpy(raw + 1, c->user, ul);
            raw[1 + ul] = 0;
            memcpy(raw + 2 + ul, c->pass, pl);
            base64_encode(raw, ul + pl + 2, b64);
            rc = cl_out_continuation(c, b64);
            wipe(raw, sizeof raw);
            wipe(b64, sizeof b64);
            return rc < 0 ? cl_fail(c, rc, "command does not fit the command queue") : 0;
        }
        return cl_fail(c, SATCHEL_E_PROTO, "unexpected continuation request");
    }
    if (r->kind == SATCHEL_RESP_TAGGED)
        return on_tagged(c, r);

    if (c->conn.ph == PH_GREETING) {
        if (r->status == SATCHEL_STATUS_OK) {
            if (r->code && satchel_imap_arg_is(r->code, "CAPABILITY"))
                read_caps(c, r->code->next);
            c->conn.ph = PH_PREAUTH;
            return preauth_advance(c);
        }
        if (r->status == SATCHEL_STATUS_PREAUTH) {
            if (!c->conn.tls_active && c->security != SATCHEL_SECURITY_NONE)
                return cl_fail(c, SATCHEL_E_SECURITY,
                               "PREAUTH on an unencrypted connection refused");
            c->conn.caps_known = 0;
            if (r->code && satchel_imap_arg_is(r->code, "CAPABILITY"))
                read_caps(c, r->code->next);
            if (!c->conn.caps_known) {
                c->conn.ph = PH_AUTHED;
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

/* The one place per-connection state starts over.  The output buffer may
 * have held credentials: zeroing it wipes them too. */
void cl_conn_reset(satchel_client *c, int tls_active, uint64_t now_ms)
{
    memset(&c->conn, 0, sizeof c->conn);
    c->conn.ph = PH_GREETING;
    c->conn.tls_active = tls_active;
    c->conn.last_activity = now_ms;
}

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
    c->op = satchel_store_op_scratch(store);
    c->security = cfg->security;
    c->fetch_window = cfg->fetch_window ? cfg->fetch_window : SATCHEL_OPT_FETCH_WINDOW;
    c->preview = cfg->preview <= SATCHEL_PREVIEW_OFF ? cfg->preview : SATCHEL_PREVIEW_NEWEST;
    c->preview_n = c->fetch_window;
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
    cl_conn_reset(c, 0, 0);
    c->conn.ph = PH_DOWN;
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
    cl_out_discard(c); /* the queue and output may hold credentials */
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
    cl_conn_reset(c, tls_active, now_ms);
    c->now = now_ms;
    /* Waiting for the greeting is the first round trip. */
    c->ctr.round_trips++;
    /* A job interrupted by a lost connection resumes; what it committed
     * stays committed (a body from its last chunk, a sync from the last
     * completed folder and window). */
    if (c->interrupted || (c->job != J_NONE && c->job != J_DONE)) {
        c->interrupted = 0;
        c->job_rc = 0;
        c->err_text[0] = '\0';
        c->resuming = 1;
        if (c->top)
            c->top->resume(c);
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
        if (c->conn.ph == PH_CLOSED || c->conn.ph == PH_DOWN)
            return c->conn.failed ? c->job_rc : 0;
        if (c->conn.ph == PH_TLS) {
            /* Bytes after "OK Begin TLS" but before the handshake were sent
             * in the clear by someone: never act on them. */
            c->ctr.bytes_in += len;
            return 0;
        }
        rc = satchel_imap_parser_feed(c->parser, data, len, &used, &r);
        c->ctr.bytes_in += used;
        data += used;
        len -= used;
        c->conn.last_activity = now_ms;
        if (rc < 0) {
            /* A literal sink (the store) that failed first has said why. */
            if (c->conn.failed && c->job_rc < 0)
                return c->job_rc;
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
            if (c->conn.failed)
                return c->job_rc ? c->job_rc : rc;
        }
    }
    return 0;
}

void satchel_client_closed(satchel_client *c, int err)
{
    if (c->conn.ph == PH_LOGOUT || (c->conn.ph == PH_CLOSED && !c->conn.failed &&
                               c->job != J_QUEUED && c->conn.n_inflight == 0)) {
        c->conn.ph = PH_DOWN;
        return;
    }
    if (!c->conn.failed)
        cl_fail(c, err < 0 ? err : SATCHEL_E_IO,
                "connection closed by the server");
    c->conn.ph = PH_DOWN;
}

size_t satchel_client_pending(satchel_client *c, const uint8_t **data)
{
    cl_out_fill(c);
    *data = c->conn.out + c->conn.out_off;
    return cl_out_ready(c);
}

/* A flight starts when bytes leave while nothing sent before is unanswered:
 * every command still in flight begins at or after this point, or a "+"
 * answered what was sent.  The port hands all received bytes to
 * satchel_client_recv, which parses them before it returns, so "answered"
 * here includes everything the port has received. */
static int flight_starts(const satchel_client *c)
{
    uint32_t i;
    if (c->conn.cont_seen)
        return 1;
    for (i = 0; i < c->conn.n_inflight; i++)
        if (c->conn.inflight[i].at < c->conn.out_sent)
            return 0;
    return 1;
}

void satchel_client_sent(satchel_client *c, size_t n)
{
    const struct cl_job *j;
    if (n > cl_out_ready(c))
        n = cl_out_ready(c);
    if (n > 0 && flight_starts(c)) {
        uint32_t i;
        c->ctr.round_trips++;
        for (i = 0; i < c->conn.n_inflight && c->conn.inflight[i].at < c->conn.out_sent; i++)
            ;
        if (i < c->conn.n_inflight) {
            c->rtt_tag = c->conn.inflight[i].tag;
            c->rtt_t = c->now;
        }
    }
    c->conn.cont_seen = 0;
    c->conn.out_sent += n;
    c->conn.out_off += n;
    c->ctr.bytes_out += n;
    cl_out_fill(c); /* serialize what is queued into the room made */
    /* Room again: a job with more to say than fitted goes on. */
    if (n && !c->conn.failed && c->conn.ph == PH_AUTHED &&
        (j = running_job(c)) != NULL && j->pump)
        j->pump(c);
}

int satchel_client_starttls_done(satchel_client *c)
{
    if (c->conn.ph != PH_TLS)
        return SATCHEL_E_INVAL;
    satchel_imap_parser_reset(c->parser);
    c->conn.want_starttls = 0;
    c->conn.tls_active = 1;
    c->conn.caps_known = 0; /* RFC 9051 6.2.1: capabilities before TLS are void */
    c->conn.caps = 0;
    c->conn.ph = PH_PREAUTH;
    return preauth_advance(c);
}

int satchel_client_want(const satchel_client *c)
{
    int w = 0;
    if (cl_out_ready(c))
        w |= SATCHEL_WANT_WRITE;
    /* A link that ended after STARTTLS's OK wants closing, not a handshake. */
    if (c->conn.want_starttls && c->conn.ph == PH_TLS && c->conn.out_len == c->conn.out_off)
        return SATCHEL_WANT_STARTTLS;
    if (c->conn.ph == PH_CLOSED || c->conn.ph == PH_DOWN)
        return w ? w : SATCHEL_WANT_CLOSE;
    return w | SATCHEL_WANT_READ;
}

/* Most bytes an answer to this command can legitimately take. */
static uint64_t answer_budget(const satchel_client *c, const struct inflight *in)
{
    uint32_t lo = (uint32_t)(in->arg >> 32), hi = (uint32_t)in->arg;
    switch (in->kind) {
    case K_WINDOW:
    case K_RESUME: /* headers, structure and preview of each message; an
                      open-ended range at most the whole folder */
        return (uint64_t)(hi == 0 ? c->fs.exists + 1u : hi >= lo ? hi - lo + 1u : 1u) *
               65536u;
    case K_BODYFETCH:
        return SATCHEL_OPT_BODY_REQUEST + 65536u;
    case K_RECONCILE:
    case K_BLOCK:
    case K_CHANGED:
    case K_NEWUIDS: /* a short FETCH per message of a check chunk or folder */
        return (uint64_t)VERIFY_BITS * 64u + 65536u;
    default:
        return 65536u;
    }
}

int satchel_client_tick(satchel_client *c, uint64_t now_ms)
{
    c->now = now_ms;
    if ((c->conn.n_inflight || c->conn.ph == PH_GREETING) &&
        now_ms - c->conn.last_activity > c->timeout_ms)
        return cl_fail(c, SATCHEL_E_TIMEOUT, "server did not answer in time");
    if (c->conn.n_inflight || c->conn.ph == PH_GREETING) {
        /* the greeting counts as a command of a few KB (tag 0: none) */
        const struct inflight *in = c->conn.n_inflight ? &c->conn.inflight[0] : NULL;
        uint32_t tag = in ? in->tag : 0;
        uint64_t budget = in ? answer_budget(c, in) : 4096u;
        if (tag != c->conn.head_tag || c->conn.head_since == 0) {
            c->conn.head_tag = tag;
            c->conn.head_since = now_ms;
        } else if (now_ms - c->conn.head_since >
                   c->timeout_ms + budget * 1000u / SATCHEL_OPT_MIN_RATE) {
            return cl_fail(c, SATCHEL_E_TIMEOUT,
                           "server answers too slowly: a command took longer than its "
                           "answer can need");
        }
    }
    return 0;
}

uint32_t satchel_client_next_timeout(const satchel_client *c, uint64_t now_ms)
{
    uint64_t due;
    if (!(c->conn.n_inflight || c->conn.ph == PH_GREETING))
        return UINT32_MAX;
    due = c->conn.last_activity + c->timeout_ms;
    return due > now_ms ? (uint32_t)(due - now_ms) : 0;
}


int satchel_client_interrupted(const satchel_client *c)
{
    return c->interrupted;
}

int satchel_client_idle(const satchel_client *c)
{
    return c->conn.ph == PH_AUTHED && c->conn.n_inflight == 0 &&
           (c->job == J_NONE || c->job == J_DONE);
}

int satchel_client_logout(satchel_client *c)
{
    int rc;
    if (c->conn.ph != PH_AUTHED && c->conn.ph != PH_PREAUTH)
        return SATCHEL_E_INVAL;
    rc = cl_simple_cmd(c, K_LOGOUT, "LOGOUT");
    if (rc == 0)
        c->conn.ph = PH_LOGOUT;
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
    return c->conn.caps;
}

int satchel_client_tls_active(const satchel_client *c)
{
    return c->conn.tls_active;
}
