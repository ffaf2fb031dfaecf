/* The session loop: the only place that moves bytes between the port (and
 * TLS) and the sans-I/O client. */
#include "app.h"

#include <stdio.h>
#include <string.h>

#include "satchel/body.h"
#include "satchel/opt.h"
#include "satchel/tls.h"

struct link {
    satchel_app *app;
    satchel_conn *conn;
    satchel_tls *tls;
};

static long link_send(struct link *l, const uint8_t *p, size_t n)
{
    return l->tls ? satchel_tls_send(l->tls, p, n)
                  : l->app->port->send(l->conn, p, n);
}

static long link_recv(struct link *l, uint8_t *p, size_t n)
{
    return l->tls ? satchel_tls_recv(l->tls, p, n)
                  : l->app->port->recv(l->conn, p, n);
}

static int start_tls(struct link *l, uint32_t timeout)
{
    satchel_app *app = l->app;
    satchel_tls_config tc;
    int rc;
    tc.ca_pem = app->cfg.ca_pem;
    tc.hostname = app->cfg.host;
    rc = satchel_tls_new(app->alloc, &tc, &l->tls);
    if (rc < 0) {
        snprintf(app->last_error, sizeof app->last_error,
                 "cannot set up TLS (CA file %s)",
                 app->cfg.ca_file ? app->cfg.ca_file : "system bundle");
        return rc;
    }
    {
        /* Offer the session saved by the last connection: a resumed
         * handshake saves a round trip, which matters on slow links. */
        uint8_t blob[SATCHEL_TLS_SESSION_MAX];
        size_t n;
        if (app->cfg.no_session_cache) {
            /* Off: and no session left behind from before either. */
            satchel_store_txn *t;
            if (satchel_store_blob_get(app->store, "tls-session", blob, sizeof blob, &n) !=
                    SATCHEL_E_NOTFOUND &&
                satchel_store_begin(app->store, &t) == 0) {
                if (satchel_store_blob_put(t, "tls-session", NULL, 0) < 0)
                    satchel_store_abort(t);
                else
                    satchel_store_commit(t);
            }
        } else if (satchel_store_blob_get(app->store, "tls-session", blob, sizeof blob,
                                          &n) == 0) {
            satchel_tls_set_session(l->tls, blob, n);
        }
    }
    rc = satchel_tls_handshake(l->tls, app->port, l->conn, timeout);
    if (rc == 0) {
        uint8_t blob[SATCHEL_TLS_SESSION_MAX];
        size_t n;
        satchel_store_txn *t;
        app->tls_resumed = satchel_tls_resumed(l->tls);
        if (!app->cfg.no_session_cache &&
            satchel_tls_get_session(l->tls, blob, sizeof blob, &n) == 0 &&
            satchel_store_begin(app->store, &t) == 0) {
            if (satchel_store_blob_put(t, "tls-session", blob, n) < 0)
                satchel_store_abort(t);
            else
                satchel_store_commit(t);
        }
    }
    if (rc < 0) {
        snprintf(app->last_error, sizeof app->last_error, "%s",
                 satchel_tls_detail(l->tls));
        return rc;
    }
    snprintf(app->tls_version, sizeof app->tls_version, "%s",
             satchel_tls_version(l->tls));
    snprintf(app->tls_cipher, sizeof app->tls_cipher, "%s",
             satchel_tls_ciphersuite(l->tls));
    return 0;
}

static void add_counters(satchel_counters *a, const satchel_counters *b)
{
    a->bytes_in += b->bytes_in;
    a->bytes_out += b->bytes_out;
    a->round_trips += b->round_trips;
    a->commands += b->commands;
}

/* Work to start once the current job is done, in the same session. */
typedef int (*next_job_fn)(satchel_app *app, satchel_client *c, void *arg);

/* The link of the open session, as start_tls and the send/recv helpers
 * take it. */
static struct link app_link(satchel_app *app)
{
    struct link l;
    l.app = app;
    l.conn = app->conn;
    l.tls = app->tls;
    return l;
}

static uint32_t cfg_timeout(const satchel_app *app)
{
    return app->cfg.timeout_ms ? app->cfg.timeout_ms : SATCHEL_OPT_TIMEOUT_MS;
}

int satchel_app_step(satchel_app *app, uint32_t wait_ms)
{
    const satchel_port *port = app->port;
    satchel_client *c = app->client;
    struct link l;
    uint32_t timeout = cfg_timeout(app);
    int w, rc;
    uint64_t now;
    long n;

    if (!c || !app->conn)
        return SATCHEL_E_INVAL;
    l = app_link(app);
    now = port->now_ms(port->ctx);
    if ((rc = satchel_client_tick(c, now)) < 0)
        return rc;
    w = satchel_client_want(c);
    if (w & SATCHEL_WANT_CLOSE)
        return satchel_client_result(c);
    if (w & SATCHEL_WANT_STARTTLS) {
        rc = start_tls(&l, timeout);
        app->tls = l.tls;
        if (rc < 0)
            return rc;
        if ((rc = satchel_client_starttls_done(c)) < 0)
            return rc;
        return 1;
    }
    if (w & SATCHEL_WANT_WRITE) {
        const uint8_t *p;
        size_t len = satchel_client_pending(c, &p);
        n = link_send(&l, p, len);
        if (n == SATCHEL_E_AGAIN) {
            if (port->wait(l.conn, 1, timeout) == 0)
                return SATCHEL_E_TIMEOUT;
            return 1;
        }
        if (n < 0)
            return (int)n;
        satchel_client_sent(c, (size_t)n);
        return 1;
    }
    if (!l.tls || satchel_tls_pending(l.tls) == 0) {
        uint32_t t = satchel_client_next_timeout(c, now);
        rc = port->wait(l.conn, 0, t < wait_ms ? t + 1 : wait_ms);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return 1; /* the next tick decides whether that was too long */
    }
    n = link_recv(&l, app->buf, sizeof app->buf);
    if (n == SATCHEL_E_AGAIN)
        return 1;
    if (n <= 0) {
        satchel_client_closed(c, n == 0 ? SATCHEL_E_IO : (int)n);
        return satchel_client_result(c);
    }
    rc = satchel_client_recv(c, app->buf, (size_t)n, port->now_ms(port->ctx));
    if (rc < 0 && SATCHEL_ERR_IS_FATAL(rc))
        return rc;
    return 1;
}

int satchel_app_idle(const satchel_app *app)
{
    return app->client && app->conn && satchel_client_idle(app->client) &&
           !(satchel_client_want(app->client) & SATCHEL_WANT_WRITE);
}

/* Work to start once the current job is done, in the same session. */
typedef int (*next_job_fn)(satchel_app *app, satchel_client *c, void *arg);

/* Connect-job-logout: step until the connection closes, starting the next
 * job or logging out whenever the client is idle. */
static int run(satchel_app *app, next_job_fn next, void *next_arg)
{
    satchel_client *c = app->client;
    int logout_sent = 0, rc;

    for (;;) {
        int w = satchel_client_want(c);
        if ((rc = satchel_client_tick(c, app->port->now_ms(app->port->ctx))) < 0)
            return rc;
        if (!(w & (SATCHEL_WANT_CLOSE | SATCHEL_WANT_STARTTLS | SATCHEL_WANT_WRITE))) {
            if (!logout_sent && satchel_client_idle(c) && next &&
                satchel_client_result(c) == 0 && next(app, c, next_arg) > 0)
                continue;
            if (!logout_sent && satchel_client_idle(c) && app->cfg.keep_session)
                return 0; /* stay logged in for the next job */
            if (!logout_sent && satchel_client_idle(c)) {
                logout_sent = 1;
                if (satchel_client_logout(c) == 0)
                    continue;
            }
        }
        rc = satchel_app_step(app, cfg_timeout(app));
        if (rc <= 0)
            return rc;
    }
}

struct job {
    int kind; /* 0 sync, 1 body */
    const char *folder;
    uint32_t uid;
    const char *section;
    uint64_t expected;
};

static int start_job(satchel_client *c, const struct job *j)
{
    if (j->kind == 0)
        return satchel_client_sync(c, j->folder);
    return satchel_client_fetch_body(c, j->folder, j->uid, j->section, j->expected);
}

static int session(satchel_app *app, const struct job *job, satchel_event_cb cb,
                   void *ctx, next_job_fn next, void *next_arg);
static int client_create(satchel_app *app, satchel_event_cb cb, void *ctx);
static int link_open(satchel_app *app);
static void link_close(satchel_app *app, int clean);
static void session_end(satchel_app *app, uint64_t t0);

/* ---- prefetch: a queue walked inside the sync session ---- */

struct prefetch {
    const char *folders; /* remaining list */
    char folder[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    uint32_t fid;
    uint32_t offset;     /* position in the folder, newest first */
};

struct pf_pick {
    satchel_app *app;
    uint32_t uid;
    char section[SATCHEL_SECTION_MAX];
    uint64_t size;
};

static int pf_cb(void *ctx, const satchel_msg *m)
{
    struct pf_pick *pk = ctx;
    static satchel_part parts[16];
    size_t n;
    int i;
    pk->uid = m->uid;
    pk->section[0] = '\0';
    if (satchel_body_parts(pk->app->alloc, m->bodystructure, strlen(m->bodystructure),
                           parts, 16, &n) < 0 || (i = satchel_body_pick_text(parts, n)) < 0)
        return 1;
    memcpy(pk->section, parts[i].section, sizeof pk->section);
    pk->size = parts[i].size;
    return 1;
}

static int prefetch_next(satchel_app *app, satchel_client *c, void *arg)
{
    struct prefetch *pf = arg;
    const satchel_app_config *cfg = &app->cfg;
    for (;;) {
        satchel_folder f;
        satchel_body_info bi;
        satchel_cache_stats cs;
        struct pf_pick pk;
        if (!pf->folder[0]) {
            size_t n;
            if (!pf->folders || !*pf->folders)
                return 0;
            n = strcspn(pf->folders, ",");
            if (n <= SATCHEL_OPT_MAX_FOLDER_NAME) {
                memcpy(pf->folder, pf->folders, n);
                pf->folder[n] = '\0';
            }
            pf->folders += n + (pf->folders[n] == ',');
            pf->offset = 0;
            if (satchel_store_folder_get(app->store, NULL, pf->folder, &f) < 0) {
                pf->folder[0] = '\0';
                continue;
            }
            pf->fid = f.id;
        }
        if (pf->offset >= cfg->prefetch_count) {
            pf->folder[0] = '\0';
            continue;
        }
        memset(&pk, 0, sizeof pk);
        pk.app = app;
        if (satchel_store_msg_list(app->store, pf->fid, pf->offset, 1, pf_cb, &pk) < 0 ||
            pk.uid == 0) {
            pf->folder[0] = '\0';
            continue;
        }
        pf->offset++;
        if (!pk.section[0] || pk.size > cfg->prefetch_max_size)
            continue;
        if (satchel_store_body_info(app->store, NULL, pf->fid, pk.uid, pk.section, &bi) == 0 &&
            bi.complete)
            continue;
        satchel_store_cache_stats(app->store, &cs);
        if (cs.budget && cs.bytes + pk.size > cs.budget)
            return 0; /* prefetch never evicts: the budget is full */
        if (satchel_client_fetch_body(c, pf->folder, pk.uid, pk.section, pk.size) == 0) {
            app->prefetched++;
            return 1;
        }
    }
}

/* One syncing session per store: another process syncing the same store
 * would replay the same queue entries. */
static int sync_lock(satchel_app *app)
{
    uint32_t holder = 0, waited = 0;
    int rc;
    while ((rc = satchel_store_sync_lock(app->store, &holder)) == SATCHEL_E_BUSY &&
           waited < app->cfg.sync_wait_ms && app->port && app->port->sleep_ms) {
        app->port->sleep_ms(app->port->ctx, 50);
        waited += 50;
    }
    if (rc == SATCHEL_E_BUSY)
        snprintf(app->last_error, sizeof app->last_error,
                 "store busy: another session is syncing (pid %u)", (unsigned)holder);
    else if (rc < 0)
        snprintf(app->last_error, sizeof app->last_error, "cannot take the sync lock: %s",
                 satchel_strerror(rc));
    return rc < 0 ? (app->last_rc = rc) : 0;
}

int satchel_app_sync(satchel_app *app, const char *folder, satchel_event_cb cb,
                     void *ctx)
{
    struct job j = {0, folder, 0, NULL, 0};
    struct prefetch pf;
    int rc;
    memset(&pf, 0, sizeof pf);
    pf.folders = app->cfg.prefetch_folders;
    app->prefetched = 0;
    if ((rc = sync_lock(app)) < 0)
        return rc;
    rc = session(app, &j, cb, ctx, app->cfg.prefetch_count ? prefetch_next : NULL, &pf);
    /* Headers come before cached bodies: a full store gives up cache and
     * the sync goes on from what it committed. */
    if (rc == SATCHEL_E_STORE_FULL && satchel_store_make_room(app->store) == 0)
        rc = session(app, &j, cb, ctx, app->cfg.prefetch_count ? prefetch_next : NULL, &pf);
    satchel_store_sync_unlock(app->store);
    return rc;
}

int satchel_app_fetch_body(satchel_app *app, const char *folder, uint32_t uid,
                           const char *section, uint64_t expected)
{
    struct job j = {1, folder, uid, section, expected};
    return session(app, &j, NULL, NULL, NULL, NULL);
}

int satchel_app_body_ensure(satchel_app *app, const satchel_folder *f,
                            uint32_t uid, const char *section, uint64_t size,
                            int *hit)
{
    satchel_body_info bi;
    satchel_store_txn *t;
    int rc;
    *hit = satchel_store_body_info(app->store, NULL, f->id, uid, section, &bi) == 0 &&
           bi.complete;
    if (*hit) {
        /* A hit counts as a use for LRU; a busy store only loses that. */
        if (satchel_store_begin(app->store, &t) == 0) {
            if (satchel_store_body_touch(t, f->id, uid, section, 1) < 0)
                satchel_store_abort(t);
            else
                satchel_store_commit(t);
        }
        return 0;
    }
    {
        satchel_cache_stats cs;
        satchel_store_cache_stats(app->store, &cs);
        if (cs.budget && size > cs.budget) {
            snprintf(app->last_error, sizeof app->last_error,
                     "part %s is %llu bytes, larger than the whole cache budget (%llu)",
                     section, (unsigned long long)size,
                     (unsigned long long)cs.budget);
            return SATCHEL_E_RANGE;
        }
    }
    if (app->cfg.offline || !app->cfg.host) {
        snprintf(app->last_error, sizeof app->last_error,
                 "%.200s %u part %s is not available offline", f->name, (unsigned)uid,
                 section);
        return SATCHEL_E_OFFLINE;
    }
    rc = satchel_app_fetch_body(app, f->name, uid, section, size);
    return rc < 0 ? rc : 0;
}

/* Reset the per-session report and check that a session can start. */
static int session_begin(satchel_app *app, uint64_t *t0)
{
    *t0 = app->port->now_ms(app->port->ctx);
    app->last_error[0] = '\0';
    memset(&app->last, 0, sizeof app->last);
    app->ttfb_ms = 0;
    app->replayed = app->replay_failed = 0;
    if (app->cfg.offline || !app->cfg.host) {
        snprintf(app->last_error, sizeof app->last_error,
                 app->cfg.offline ? "offline mode: sync needs the network"
                                  : "no server configured");
        return app->last_rc = SATCHEL_E_OFFLINE;
    }
    return 0;
}

static int client_create(satchel_app *app, satchel_event_cb cb, void *ctx)
{
    satchel_client_config cc;
    int rc;
    memset(&cc, 0, sizeof cc);
    cc.security = app->cfg.security;
    cc.user = app->cfg.user;
    cc.password = app->cfg.password;
    cc.timeout_ms = cfg_timeout(app);
    cc.fetch_window = app->cfg.fetch_window;
    cc.preview = app->cfg.preview;
    cc.disable_caps = app->cfg.disable_caps;
    if (!cc.user || !cc.password) {
        snprintf(app->last_error, sizeof app->last_error,
                 "no user or password configured");
        return app->last_rc = SATCHEL_E_INVAL;
    }
    rc = satchel_client_new(app->alloc, &cc, app->store, &app->client);
    if (rc < 0) {
        snprintf(app->last_error, sizeof app->last_error, "cannot create client: %s",
                 satchel_strerror(rc));
        return app->last_rc = rc;
    }
    satchel_client_set_event_cb(app->client, cb, ctx);
    return 0;
}

/* Open the connection (and TLS, when implicit) and tell the client. */
static int link_open(satchel_app *app)
{
    struct link l;
    uint32_t timeout = cfg_timeout(app);
    int rc;
    memset(&l, 0, sizeof l);
    l.app = app;
    app->conn = NULL;
    app->tls = NULL;
    rc = app->port->open(app->port->ctx, app->cfg.host, app->cfg.port, timeout,
                         &l.conn);
    app->conn = l.conn;
    if (rc < 0) {
        app->conn = NULL;
        snprintf(app->last_error, sizeof app->last_error,
                 "cannot connect to %s:%u: %s", app->cfg.host,
                 (unsigned)app->cfg.port, satchel_strerror(rc));
        return rc;
    }
    app->tls_version[0] = app->tls_cipher[0] = '\0';
    if (app->cfg.security == SATCHEL_SECURITY_TLS) {
        rc = start_tls(&l, timeout);
        app->tls = l.tls;
        if (rc < 0)
            return rc;
    }
    satchel_client_connected(app->client, app->port->now_ms(app->port->ctx),
                             app->cfg.security == SATCHEL_SECURITY_TLS);
    return 0;
}

static void link_close(satchel_app *app, int clean)
{
    if (app->tls) {
        if (clean)
            satchel_tls_close(app->tls);
        satchel_tls_free(app->tls);
        app->tls = NULL;
    }
    if (app->conn)
        app->port->close(app->conn);
    app->conn = NULL;
}

/* The session's figures into the app's report; the client goes away. */
/* The session's counters since kept_base (what earlier jobs in a kept
 * session already reported) into last and total. */
static void account(satchel_app *app)
{
    satchel_counters now;
    satchel_client_get_counters(app->client, &now);
    app->last = now;
    app->last.bytes_in -= app->kept_base.bytes_in;
    app->last.bytes_out -= app->kept_base.bytes_out;
    app->last.round_trips -= app->kept_base.round_trips;
    app->last.commands -= app->kept_base.commands;
    add_counters(&app->total, &app->last);
    app->kept_base = now;
}

static void session_end(satchel_app *app, uint64_t t0)
{
    satchel_client *c = app->client;
    app->caps = satchel_client_caps(c);
    satchel_client_replay_counts(c, &app->replayed, &app->replay_failed);
    account(app);
    memset(&app->kept_base, 0, sizeof app->kept_base);
    app->session_ms = (uint32_t)(app->port->now_ms(app->port->ctx) - t0);
    if (app->last.body_first_ms > t0)
        app->ttfb_ms = (uint32_t)(app->last.body_first_ms - t0);
    app->syncs++;
    satchel_client_free(c);
    app->client = NULL;
}

/* A job in the session kept open by keep_session.  Returns its result;
 * a lost connection (SATCHEL_E_IO, _TIMEOUT, _TLS) leaves it to the caller
 * to start over. */
static int kept_job(satchel_app *app, const struct job *job, satchel_event_cb cb,
                    void *ctx, next_job_fn next, void *next_arg)
{
    satchel_client *c = app->client;
    uint64_t t0;
    int rc;
    if ((rc = session_begin(app, &t0)) < 0)
        return rc;
    satchel_client_set_event_cb(c, cb, ctx);
    rc = start_job(c, job);
    if (rc < 0)
        snprintf(app->last_error, sizeof app->last_error, "%s", satchel_strerror(rc));
    else
        rc = run(app, next, next_arg);
    if (rc == 0 && satchel_client_result(c) < 0)
        rc = satchel_client_result(c);
    if (rc < 0 && !app->last_error[0])
        snprintf(app->last_error, sizeof app->last_error, "%s",
                 satchel_client_error_text(c));
    satchel_client_replay_counts(c, &app->replayed, &app->replay_failed);
    account(app);
    app->session_ms = (uint32_t)(app->port->now_ms(app->port->ctx) - t0);
    app->syncs++;
    return rc;
}

static int session(satchel_app *app, const struct job *job, satchel_event_cb cb,
                   void *ctx, next_job_fn next, void *next_arg)
{
    satchel_client *c;
    uint32_t attempt, backoff_exp = 0;
    uint64_t seen_in = 0, t0;
    int rc, started = 0;

    if (app->client && app->cfg.keep_session) {
        if (app->conn) {
            rc = kept_job(app, job, cb, ctx, next, next_arg);
            if (rc >= 0 ||
                !(rc == SATCHEL_E_IO || rc == SATCHEL_E_TIMEOUT || rc == SATCHEL_E_TLS))
                return app->last_rc = rc;
        }
        /* The kept connection is gone: end that session and start over;
         * the job resumes from what it committed. */
        link_close(app, 0);
        session_end(app, app->kept_t0);
    }
    if (app->client)
        return SATCHEL_E_BUSY; /* a kept session is open: use its calls */
    if ((rc = session_begin(app, &t0)) < 0 || (rc = client_create(app, cb, ctx)) < 0)
        return rc;
    c = app->client;
    for (attempt = 0;; attempt++) {
        app->last_error[0] = '\0';
        rc = link_open(app);
        if (rc == 0) {
            if (!started) {
                started = 1;
                rc = start_job(c, job);
                if (rc < 0)
                    snprintf(app->last_error, sizeof app->last_error, "%s",
                             satchel_strerror(rc));
            }
            if (rc >= 0)
                rc = run(app, next, next_arg);
            if (rc < 0 && !app->last_error[0])
                snprintf(app->last_error, sizeof app->last_error, "%s",
                         satchel_client_error_text(c));
            if (rc == 0 && satchel_client_result(c) < 0) {
                rc = satchel_client_result(c);
                snprintf(app->last_error, sizeof app->last_error, "%s",
                         satchel_client_error_text(c));
            }
        }
        if (rc == 0 && app->cfg.keep_session && app->conn) {
            /* Stay logged in; this job's figures are reported now. */
            app->caps = satchel_client_caps(c);
            satchel_client_replay_counts(c, &app->replayed, &app->replay_failed);
            account(app);
            app->session_ms = (uint32_t)(app->port->now_ms(app->port->ctx) - t0);
            app->syncs++;
            app->kept_t0 = t0;
            return app->last_rc = 0;
        }
        link_close(app, rc == 0);
        /* A lost link (cut, reset, silence, TLS torn mid-record) is retried
         * with bounded exponential back-off and jitter; the job resumes from
         * what it committed.  Refusals (certificate, login, security) are
         * final. */
        if (rc >= 0 || attempt >= app->cfg.retries ||
            !(rc == SATCHEL_E_IO || rc == SATCHEL_E_TIMEOUT || rc == SATCHEL_E_TLS) ||
            (started && !satchel_client_interrupted(c)))
            break;
        {
            uint32_t base = app->cfg.backoff_ms ? app->cfg.backoff_ms : 500u;
            uint32_t wait;
            satchel_counters now_ctr;
            uint8_t r[2] = {0, 0};
            /* A connection that moved a fair amount of data made progress:
             * the link works, so start the back-off over. */
            satchel_client_get_counters(c, &now_ctr);
            if (now_ctr.bytes_in - seen_in >= 16384u)
                backoff_exp = 0;
            seen_in = now_ctr.bytes_in;
            wait = base << (backoff_exp < 6 ? backoff_exp : 6);
            backoff_exp++;
            if (wait > 30000u)
                wait = 30000u;
            app->port->entropy(app->port->ctx, r, sizeof r);
            wait = wait / 2u + (uint32_t)((r[0] << 8 | r[1]) % (wait / 2u + 1u));
            app->reconnects++;
            if (app->port->version >= 2 && app->port->sleep_ms)
                app->port->sleep_ms(app->port->ctx, wait);
        }
    }
    session_end(app, t0);
    if (rc < 0 && !app->last_error[0])
        snprintf(app->last_error, sizeof app->last_error, "%s",
                 satchel_strerror(rc));
    return app->last_rc = rc;
}

/* ---- a session kept open between commands ---- */

int satchel_app_connect(satchel_app *app, satchel_event_cb cb, void *ctx)
{
    int rc;
    if (app->conn)
        return SATCHEL_E_BUSY;
    if (!app->client) {
        if ((rc = session_begin(app, &app->kept_t0)) < 0 ||
            (rc = client_create(app, cb, ctx)) < 0)
            return rc;
    } else {
        satchel_client_set_event_cb(app->client, cb, ctx);
    }
    app->last_error[0] = '\0';
    if ((rc = link_open(app)) < 0) {
        link_close(app, 0);
        return app->last_rc = rc;
    }
    return 0;
}

int satchel_app_start_sync(satchel_app *app, const char *folder)
{
    int rc;
    if (!app->client)
        return SATCHEL_E_INVAL;
    /* Held until disconnect: a session kept open is the syncing one. */
    if ((rc = sync_lock(app)) < 0)
        return rc;
    return satchel_client_sync(app->client, folder);
}

int satchel_app_start_body(satchel_app *app, const char *folder, uint32_t uid,
                           const char *section, uint64_t expected)
{
    if (!app->client)
        return SATCHEL_E_INVAL;
    return satchel_client_fetch_body(app->client, folder, uid, section, expected);
}

int satchel_app_disconnect(satchel_app *app)
{
    int rc = 0;
    if (!app->client)
        return SATCHEL_E_INVAL;
    satchel_store_sync_unlock(app->store);
    if (app->conn) {
        if (satchel_client_logout(app->client) == 0)
            while ((rc = satchel_app_step(app, cfg_timeout(app))) > 0)
                ;
        if (rc == 0 && satchel_client_result(app->client) < 0)
            rc = satchel_client_result(app->client);
        if (rc < 0)
            snprintf(app->last_error, sizeof app->last_error, "%s",
                     satchel_client_error_text(app->client));
        link_close(app, rc == 0);
    }
    session_end(app, app->kept_t0);
    return app->last_rc = rc;
}
