/* FETCH items to a message record: pure functions of the response tree,
 * with no client state, so they can be tested and fuzzed alone. */
#include "client_internal.h"

#include <string.h>

/* ---------- FETCH ---------- */

void fetch_map_flags(const satchel_imap_arg *list, uint32_t *flags,
                     char *kw, size_t kwcap)
{
    const satchel_imap_arg *a;
    size_t n = 0;
    *flags = 0;
    kw[0] = '\0';
    for (a = list ? list->child : NULL; a; a = a->next) {
        uint32_t bit;
        if (a->type != SATCHEL_ARG_ATOM)
            continue;
        bit = satchel_flag_bit(a->str, a->len);
        if (bit)
            *flags |= bit;
        else if (satchel_imap_arg_is(a, "\\Recent"))
            continue; /* session state, not message state */
        else if (n + a->len + 2 <= kwcap) {
            if (n)
                kw[n++] = ' ';
            memcpy(kw + n, a->str, a->len);
            n += a->len;
            kw[n] = '\0';
        }
    }
}

/* Serialize an argument tree back to IMAP syntax (for BODYSTRUCTURE). */
static int ser(const satchel_imap_arg *a, char *out, size_t cap, size_t *n)
{
    for (; a; a = a->next) {
        uint32_t i;
        if (*n + 2 >= cap)
            return SATCHEL_E_RANGE;
        switch (a->type) {
        case SATCHEL_ARG_LIST:
            out[(*n)++] = '(';
            if (ser(a->child, out, cap, n) < 0)
                return SATCHEL_E_RANGE;
            if (*n + 2 >= cap)
                return SATCHEL_E_RANGE;
            out[(*n)++] = ')';
            break;
        case SATCHEL_ARG_NIL:
            if (*n + 4 >= cap)
                return SATCHEL_E_RANGE;
            memcpy(out + *n, "NIL", 3);
            *n += 3;
            break;
        case SATCHEL_ARG_STRING:
            out[(*n)++] = '"';
            for (i = 0; i < a->len; i++) {
                char ch = a->str[i];
                if (*n + 3 >= cap)
                    return SATCHEL_E_RANGE;
                if (ch == '"' || ch == '\\')
                    out[(*n)++] = '\\';
                out[(*n)++] = (ch == '\r' || ch == '\n' || ch == 0) ? ' ' : ch;
            }
            if (*n + 2 >= cap)
                return SATCHEL_E_RANGE;
            out[(*n)++] = '"';
            break;
        default:
            if (*n + a->len + 2 >= cap)
                return SATCHEL_E_RANGE;
            memcpy(out + *n, a->str, a->len);
            *n += a->len;
            break;
        }
        if (a->next)
            out[(*n)++] = ' ';
    }
    out[*n] = '\0';
    return 0;
}

/* One body (a LIST) into out[*n..cap): whole when it fits; else, for a
 * multipart, as many whole child bodies as fit and its ')', so what is
 * kept is a prefix whose sections are the server's (a part that does not
 * fit is left out, never cut).  Returns 0 (whole) or 1 (cut). */
static int ser_body(const satchel_imap_arg *body, char *out, size_t cap, size_t *n,
                    int depth)
{
    satchel_imap_arg one = *body;
    const satchel_imap_arg *a;
    size_t start = *n;
    one.next = NULL;
    if (ser(&one, out, cap, n) == 0)
        return 0;
    *n = start;
    out[start] = '\0';
    if (depth >= SATCHEL_OPT_BODY_DEPTH || !body->child ||
        body->child->type != SATCHEL_ARG_LIST || start + 4 >= cap)
        return 1;
    out[(*n)++] = '(';
    for (a = body->child; a && a->type == SATCHEL_ARG_LIST; a = a->next)
        if (ser_body(a, out, cap - 1, n, depth + 1))
            break; /* keep to the prefix: nothing after a cut */
    out[(*n)++] = ')';
    out[*n] = '\0';
    return 1;
}

/* The items of one FETCH response, by name.  Pointers point into the
 * response's argument tree and live as long as it does. */
void fetch_map_items(const satchel_imap_arg *list, struct fetch_items *it)
{
    const satchel_imap_arg *k;
    memset(it, 0, sizeof *it);
    for (k = list->child; k && k->next; k = k->next->next) {
        const satchel_imap_arg *v = k->next;
        if (satchel_imap_arg_is(k, "UID")) {
            if (satchel_imap_arg_u32(v, &it->uid) < 0)
                it->uid = 0;
        } else if (satchel_imap_arg_is(k, "FLAGS") && v->type == SATCHEL_ARG_LIST) {
            it->has_flags = 1;
            fetch_map_flags(v, &it->flags, it->kw, sizeof it->kw);
        } else if (satchel_imap_arg_is(k, "MODSEQ") && v->type == SATCHEL_ARG_LIST) {
            if (satchel_imap_arg_u64(v->child, UINT64_MAX, &it->modseq) < 0)
                it->modseq = 0;
        } else if (satchel_imap_arg_is(k, "RFC822.SIZE")) {
            it->size = v;
        } else if (satchel_imap_arg_is(k, "INTERNALDATE")) {
            it->idate = v;
        } else if (satchel_imap_arg_is(k, "PREVIEW")) {
            it->preview = v;
        } else if (satchel_imap_arg_is(k, "BODYSTRUCTURE")) {
            it->bs = v;
            it->has_bs = 1;
        } else if (k->type == SATCHEL_ARG_ATOM && k->len >= 18 &&
                   satchel_ascii_ieq(k->str, 18, "BODY[HEADER.FIELDS")) {
            it->hdr = v;
            it->has_headers = 1;
        }
    }
}

/* The message record for the items of one FETCH: flags, size, dates,
 * decoded Subject and From, Message-ID, preview and BODYSTRUCTURE.  hdr is
 * scratch for one header value. */
void fetch_map_msg(const struct fetch_items *it, satchel_msg *m, char *hdr,
                   size_t hdrcap)
{
    int64_t epoch;
    int tz;
    size_t n = 0;

    memset(m, 0, sizeof *m);
    m->uid = it->uid;
    m->flags = it->flags;
    memcpy(m->keywords, it->kw, sizeof m->keywords);
    m->modseq = it->modseq;
    if (it->size) {
        uint64_t sz = 0; /* number64 (RFC 9051) */
        if (satchel_imap_arg_u64(it->size, INT64_MAX, &sz) == 0)
            m->size = sz;
    }
    if (it->idate && it->idate->type == SATCHEL_ARG_STRING &&
        satchel_mime_parse_internaldate(it->idate->str, it->idate->len, &epoch,
                                        &tz) == 0) {
        m->internaldate = epoch;
        m->internaldate_tz = (int16_t)(tz >= -1440 && tz <= 1440 ? tz : 0);
    }
    m->date = m->internaldate;
    m->date_tz = m->internaldate_tz;
    if (it->hdr && (it->hdr->type == SATCHEL_ARG_STRING)) {
        const char *h = it->hdr->str;
        size_t hl = it->hdr->len;
        int hn;
        hn = satchel_mime_header_get(h, hl, "Subject", hdr, hdrcap);
        if (hn >= 0 || hn == SATCHEL_E_RANGE)
            satchel_mime_decode_header(hdr, strlen(hdr), m->subject,
                                       sizeof m->subject);
        hn = satchel_mime_header_get(h, hl, "From", hdr, hdrcap);
        if (hn >= 0 || hn == SATCHEL_E_RANGE)
            satchel_mime_format_from(hdr, strlen(hdr), m->from,
                                     sizeof m->from);
        hn = satchel_mime_header_get(h, hl, "Message-ID", hdr, hdrcap);
        if (hn >= 0 && strlen(hdr) < sizeof m->message_id)
            memcpy(m->message_id, hdr, strlen(hdr) + 1);
        hn = satchel_mime_header_get(h, hl, "Date", hdr, hdrcap);
        if (hn >= 0 &&
            satchel_mime_parse_date(hdr, strlen(hdr), &epoch, &tz) == 0) {
            m->date = epoch;
            /* Records keep zones within a day; a hostile "+9959" becomes
             * UTC rather than a record nobody can read back. */
            m->date_tz = (int16_t)(tz >= -1440 && tz <= 1440 ? tz : 0);
        }
    }
    if (it->preview && it->preview->type == SATCHEL_ARG_STRING)
        satchel_mime_to_utf8("utf-8", 5, (const uint8_t *)it->preview->str,
                             it->preview->len, m->preview, sizeof m->preview, &n);
    n = 0;
    m->bodystructure[0] = '\0';
    if (it->bs && it->bs->type == SATCHEL_ARG_LIST) {
        /* Too large (or cut by the parser's limits): keep the prefix that
         * fits, marked, so the parts it describes can still be fetched. */
        if (ser_body(it->bs, m->bodystructure, sizeof m->bodystructure, &n, 0) ||
            it->bs_truncated)
            m->mflags |= SATCHEL_MSG_F_BS_TRUNCATED;
    } else if (it->bs_truncated) {
        m->mflags |= SATCHEL_MSG_F_BS_TRUNCATED;
    }
}
