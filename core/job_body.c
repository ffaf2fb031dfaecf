/* Body download: pipelined partial BODY.PEEK[section] requests streamed
 * into the store's cache in chunks, resumable from the last commit. */
#include "client_internal.h"

#include <string.h>

/* ---------- body download ---------- */

/* "BODY[1.2]<4096>": does it name our section, and from which origin? */
static int body_item(const satchel_client *c, const char *item, uint64_t *origin)
{
    size_t sl = strlen(c->body.section);
    const char *p;
    uint64_t o = 0;
    /* Names are case-insensitive (RFC 9051 9): "body[1.mime]" is ours too. */
    if (!satchel_ascii_ieq(item, 5, "BODY[") ||
        !satchel_ascii_ieq(item + 5, sl, c->body.section) || item[5 + sl] != ']')
        return 0;
    p = item + 5 + sl + 1;
    if (*p == '<') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (o > (UINT64_MAX - 9) / 10)
                return 0;
            o = o * 10 + (uint64_t)(*p - '0');
        }
        if (*p != '>')
            return 0;
    }
    *origin = o;
    return 1;
}

static int body_flush(satchel_client *c)
{
    struct body_job *b = &c->body;
    int rc;
    if (b->chunk_len == 0)
        return 0;
    if ((rc = cl_txn(c)) < 0)
        return rc;
    rc = satchel_store_body_write(c->txn, b->fid, b->uid, b->section,
                                  b->committed + b->written, c->chunk,
                                  b->chunk_len, b->expected);
    if (rc == SATCHEL_E_STORE_FULL) {
        /* The map is full: drop this transaction, make room, and ask again
         * from what is committed. */
        satchel_store_abort(c->txn);
        c->txn = NULL;
        b->written = 0;
        b->chunk_len = 0;
        b->lit_skip = 1;
        b->retry = 1;
        if (satchel_store_begin_reserve(c->store, &c->txn) == 0) {
            /* Never this body's own committed chunks: they are what the
             * download resumes from. */
            rc = satchel_store_cache_free(c->txn, 4u * SATCHEL_OPT_BODY_REQUEST, b->fid,
                                          b->uid, b->section);
            if (rc < 0)
                satchel_store_abort(c->txn);
            else
                rc = satchel_store_commit(c->txn);
            c->txn = NULL; /* commit and abort free it */
            if (rc < 0)
                return cl_fail(c, rc, rc == SATCHEL_E_STORE_FULL
                                          ? "store full: nothing left to evict"
                                          : "cannot make room for the body");
        }
        return 0;
    }
    if (rc < 0)
        return cl_fail(c, rc, rc == SATCHEL_E_RANGE
                               ? "part is larger than the whole cache budget"
                               : "cannot store body chunk");
    b->written += b->chunk_len;
    b->chunk_len = 0;
    /* Commit every few chunks, mid-literal too: a link that cannot carry
     * a whole request still makes progress, resumed from here. */
    if (b->written >= 4u * SATCHEL_OPT_BODY_CHUNK) {
        if ((rc = cl_commit(c, 0)) < 0)
            return rc;
        b->committed += b->written;
        b->written = 0;
    }
    return 0;
}

/* Literal bytes of the part stream through here in bounded chunks. */
int body_sink(void *ctx, const char *item, uint64_t off, uint64_t total,
                     const uint8_t *data, size_t len)
{
    satchel_client *c = ctx;
    struct body_job *b = &c->body;
    if (c->job != J_BODY_FETCH || c->conn.failed)
        return 0;
    if (off == 0) {
        uint64_t origin;
        b->lit_skip = 1;
        if (!body_item(c, item, &origin))
            return 0;
        b->lit_origin = origin;
        /* Only bytes that continue exactly where the store ends are kept:
         * what the store has already is skipped (an answer that starts
         * earlier, such as the whole part sent again), a gap or a repeat
         * after a retry is dropped. */
        b->lit_skip = origin > b->committed + b->written + b->chunk_len || b->retry;
    }
    if (b->lit_skip)
        return 0;
    {
        uint64_t at = b->lit_origin + off, end = b->committed + b->written + b->chunk_len;
        if (at > end) {
            b->lit_skip = 1;
            return 0;
        }
        if (at + len <= end)
            return 0;
        data += (size_t)(end - at);
        len -= (size_t)(end - at);
    }
    if (c->ctr.body_first_ms == 0)
        c->ctr.body_first_ms = c->now ? c->now : 1;
    while (len > 0) {
        size_t room = sizeof c->chunk - b->chunk_len;
        size_t k = len < room ? len : room;
        memcpy(c->chunk + b->chunk_len, data, k);
        b->chunk_len += k;
        data += k;
        len -= k;
        if (b->chunk_len == sizeof c->chunk && body_flush(c) < 0)
            return SATCHEL_E_STORE;
        if (b->lit_skip)
            return 0;
    }
    (void)total;
    return 0;
}

static int body_on_fetch(satchel_client *c, const satchel_imap_arg *list)
{
    struct body_job *b = &c->body;
    const satchel_imap_arg *k;
    uint32_t uid = 0;
    for (k = list->child; k && k->next; k = k->next->next)
        if (satchel_imap_arg_is(k, "UID"))
            satchel_imap_arg_u32(k->next, &uid);
    if (uid != b->uid)
        return 0; /* another message's flags, pushed by the server */
    for (k = list->child; k && k->next; k = k->next->next) {
        const satchel_imap_arg *v = k->next;
        uint64_t origin, size;
        int rc;
        if (k->type != SATCHEL_ARG_ATOM || !body_item(c, k->str, &origin))
            continue;
        b->seen = 1;
        if (v->type == SATCHEL_ARG_NIL) {
            cl_set_error(c, SATCHEL_E_NOTFOUND, "no such part on the server",
                         b->section, strlen(b->section));
            return cl_fail(c, SATCHEL_E_NOTFOUND, c->err_text);
        }
        if (v->type != SATCHEL_ARG_STRING)
            return cl_fail(c, SATCHEL_E_PROTO, "malformed body in FETCH");
        size = v->size;
        if (!(v->flags & SATCHEL_ARG_F_LITERAL) && v->len > 0 && !b->retry &&
            origin == b->committed + b->written + b->chunk_len) {
            /* A quoted string never went through the sink. */
            const char *p = v->str;
            size_t left = v->len;
            while (left) {
                size_t room = sizeof c->chunk - b->chunk_len;
                size_t n = left < room ? left : room;
                memcpy(c->chunk + b->chunk_len, p, n);
                b->chunk_len += n;
                p += n;
                left -= n;
                if (b->chunk_len == sizeof c->chunk && (rc = body_flush(c)) < 0)
                    return rc;
            }
        }
        if (!b->retry && (rc = body_flush(c)) < 0)
            return rc;
        /* Judged by what it contains: shorter than asked is the end; longer
         * than asked is a server that ignored <start.size> and sent the
         * whole part (kept when it started where the store ends, or had
         * been kept from an earlier answer), so it is the end too. */
        if (size != SATCHEL_OPT_BODY_REQUEST && origin + size <= b->committed + b->written)
            b->done = 1;
    }
    return 0;
}

static int body_request(satchel_client *c)
{
    struct body_job *b = &c->body;
    int rc;
    if ((rc = cl_cmd_begin(c, K_BODYFETCH)) < 0 || (rc = cl_out_str(c, "UID FETCH ")) < 0 ||
        (rc = cl_out_u64(c, b->uid)) < 0 || (rc = cl_out_str(c, " (BODY.PEEK[")) < 0 ||
        (rc = cl_out_str(c, b->section)) < 0 || (rc = cl_out_str(c, "]<")) < 0 ||
        (rc = cl_out_u64(c, b->next_req)) < 0 || (rc = cl_out_str(c, ".")) < 0 ||
        (rc = cl_out_u64(c, SATCHEL_OPT_BODY_REQUEST)) < 0 ||
        (rc = cl_out_str(c, ">)")) < 0 || (rc = cl_cmd_end(c)) < 0)
        return cl_fail(c, rc, "command does not fit the command queue");
    cl_cmd_arg(c, b->next_req);
    b->next_req += SATCHEL_OPT_BODY_REQUEST;
    b->n_req++;
    return 0;
}

/* Keep up to two requests in flight while the end is not known to be
 * reached: the second hides the round trip on slow links. */
static int body_pump(satchel_client *c)
{
    struct body_job *b = &c->body;
    int rc;
    while (!b->done && !c->conn.failed && cl_count_inflight(c, K_BODYFETCH) < 2) {
        uint64_t have = b->committed + b->written;
        uint64_t basis = b->expected > b->req_base ? b->expected - b->req_base : 0;
        /* At or past the size BODYSTRUCTURE announced: wait for the answer
         * (a part smaller than one request takes one request), unless the
         * answers already showed that size wrong. */
        if (b->expected && b->next_req >= b->expected && have <= b->expected &&
            cl_count_inflight(c, K_BODYFETCH) > 0)
            break;
        /* Never more requests than the part's size needs, plus a few: the
         * announced size, or what the server has really sent when that is
         * more (GNU imap4d gives some parts' line counts as their size).
         * Every request past the announced size is paid for by a full
         * answer, and a part larger than the cache's budget is refused. */
        if (have - b->req_base > basis)
            basis = have - b->req_base;
        if (b->expected && b->n_req > basis / SATCHEL_OPT_BODY_REQUEST + 4)
            return cl_fail(c, SATCHEL_E_PROTO, "server sends more of the part than its "
                                               "BODYSTRUCTURE size, request after request");
        if ((rc = body_request(c)) < 0)
            return rc;
    }
    return 0;
}

static int body_tagged(satchel_client *c, int ok, const satchel_imap_resp *r)
{
    struct body_job *b = &c->body;
    int rc;
    if (!ok) {
        cl_set_error(c, SATCHEL_E_SERVER, "server refused the body FETCH", r->text,
                     r->text_len);
        return cl_fail(c, SATCHEL_E_SERVER, c->err_text);
    }
    if (c->conn.failed)
        return c->job_rc;
    if ((rc = body_flush(c)) < 0)
        return rc;
    if (b->done && !b->retry && !b->completed) {
        b->completed = 1;
        if ((rc = cl_txn(c)) < 0)
            return rc;
        if ((rc = satchel_store_body_complete(c->txn, b->fid, b->uid, b->section)) < 0 ||
            (rc = satchel_store_body_touch(c->txn, b->fid, b->uid, b->section, 0)) < 0)
            return cl_fail(c, rc, "cannot complete body");
    }
    if ((rc = cl_commit(c, 0)) < 0)
        return rc;
    b->committed += b->written;
    b->written = 0;
    if (!b->seen) {
        cl_set_error(c, SATCHEL_E_NOTFOUND, "message no longer on the server", NULL, 0);
        return cl_fail(c, SATCHEL_E_NOTFOUND, c->err_text);
    }
    if (b->done && !b->retry) {
        if (cl_count_inflight(c, K_BODYFETCH) == 0)
            c->job = J_DONE;
        return 0;
    }
    if (!b->retry && cl_count_inflight(c, K_BODYFETCH) == 0) {
        /* Answers that add nothing, again and again: the server is not
         * giving the part out in pieces; stop instead of asking forever. */
        if (b->committed == b->last_end && ++b->stalls >= 3)
            return cl_fail(c, SATCHEL_E_PROTO, "server answers body requests without "
                                               "giving more of the part");
        if (b->committed != b->last_end)
            b->stalls = 0;
        b->last_end = b->committed;
    }
    if (b->retry) {
        if (cl_count_inflight(c, K_BODYFETCH))
            return 0; /* let the other answer drain first */
        b->retry = 0;
        b->done = 0;
        b->next_req = b->req_base = b->committed;
        b->n_req = 0;
    }
    return body_pump(c);
}

int satchel_client_fetch_body(satchel_client *c, const char *folder,
                              uint32_t uid, const char *section,
                              uint64_t expected)
{
    satchel_folder f;
    satchel_body_info bi;
    int rc;
    if (c->job != J_NONE && c->job != J_DONE)
        return SATCHEL_E_BUSY;
    if (!folder || !section || uid == 0 || strlen(section) >= SATCHEL_SECTION_MAX ||
        strlen(folder) > SATCHEL_OPT_MAX_FOLDER_NAME)
        return SATCHEL_E_INVAL;
    if ((rc = satchel_store_folder_get(c->store, NULL, folder, &f)) < 0)
        return rc;
    memset(&c->body, 0, sizeof c->body);
    c->body.fid = f.id;
    c->body.uid = uid;
    memcpy(c->body.section, section, strlen(section) + 1);
    c->body.expected = expected;
    rc = satchel_store_body_info(c->store, NULL, f.id, uid, section, &bi);
    if (rc == 0) {
        if (bi.complete)
            return 0; /* nothing to do */
        c->body.committed = bi.stored; /* resume after the last chunk */
    } else if (rc != SATCHEL_E_NOTFOUND) {
        return rc;
    }
    c->body.next_req = c->body.req_base = c->body.last_end = c->body.committed;
    c->job_all = 0;
    c->job_rc = 0;
    c->err_text[0] = '\0';
    c->top = &cl_job_body;
    c->interrupted = 0;
    c->job = J_BODY_SELECT;
    return cl_job_advance(c);
}

static int body_select_tagged(satchel_client *c, int ok, const satchel_imap_resp *r)
{
    if (!ok) {
        cl_set_error(c, SATCHEL_E_NOTFOUND, "cannot open folder", r->text,
                     r->text_len);
        return cl_fail(c, SATCHEL_E_NOTFOUND, c->err_text);
    }
    c->job = J_BODY_FETCH;
    return body_pump(c);
}

static int body_tagged_any(satchel_client *c, uint8_t kind, uint64_t arg, int ok,
                           const satchel_imap_resp *r)
{
    (void)arg;
    return kind == K_BSELECT ? body_select_tagged(c, ok, r) : body_tagged(c, ok, r);
}

static int body_untagged(satchel_client *c, const satchel_imap_resp *r)
{
    const satchel_imap_arg *a = r->args, *list;
    uint32_t num;
    /* a = seq "FETCH" (items) */
    if (r->status != SATCHEL_STATUS_NONE || c->job != J_BODY_FETCH ||
        satchel_imap_arg_u32(a, &num) < 0 || !a->next ||
        !satchel_imap_arg_is(a->next, "FETCH") || !(list = a->next->next) ||
        list->type != SATCHEL_ARG_LIST)
        return 0;
    return body_on_fetch(c, list);
}

/* SELECT the message's folder once nothing else is outstanding. */
static int body_advance(satchel_client *c)
{
    satchel_folder f; /* its name goes into the command queue */
    int rc;
    if (c->job != J_BODY_SELECT ||
        c->conn.n_inflight > (uint32_t)cl_count_inflight(c, K_ENABLE))
        return 0;
    if ((rc = satchel_store_folder_get_id(c->store, NULL, c->body.fid, &f)) < 0)
        /* (not found: a sync since the download began found it gone) */
        return cl_fail(c, rc, rc == SATCHEL_E_NOTFOUND
                                  ? "folder no longer in the store (gone from the server)"
                                  : "cannot read folder");
    if ((rc = cl_select(c, K_BSELECT, f.name, 0, 0, 0)) < 0)
        return cl_fail(c, rc, "cannot send SELECT");
    return 0;
}

/* A new connection: ask again from the last committed chunk. */
static void body_resume(satchel_client *c)
{
    satchel_body_info bi;
    c->job = J_BODY_SELECT;
    c->body.written = c->body.chunk_len = 0;
    c->body.done = c->body.retry = c->body.seen = 0;
    if (satchel_store_body_info(c->store, NULL, c->body.fid, c->body.uid,
                                c->body.section, &bi) == 0)
        c->body.committed = bi.stored;
    c->body.next_req = c->body.req_base = c->body.last_end = c->body.committed;
    c->body.n_req = c->body.stalls = 0;
}

const struct cl_job cl_job_body = {body_untagged, body_tagged_any, body_advance,
                                   body_resume, NULL};
