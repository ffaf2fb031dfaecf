/* fuzz_fetch_map: the FETCH-items-to-record mapping (core/fetch_map.c) on
 * its own, with no client or store around it.
 *
 * Input: the inside of a FETCH item list; it is parsed as
 * "* 1 FETCH (<input>)" and, when that gives a FETCH with a list, mapped
 * with fetch_map_items and fetch_map_msg.  Every text field of the record
 * must end inside its array, the flags must be system-flag bits only, and
 * the UID must be the one the items named.  A non-empty stored
 * BODYSTRUCTURE must be a parenthesized list that maps to itself when it
 * is sent through the parser and the mapping again. */
#include "fuzz_common.h"

#include "../../core/client_internal.h"
#include "satchel/opt.h"

static satchel_msg m1, m2;
static char hdr[1024];

/* Parse one whole line; the response stays valid until p is fed again. */
static const satchel_imap_resp *parse(satchel_imap_parser *p, const char *line, size_t n)
{
    const satchel_imap_resp *r = NULL;
    size_t pos = 0;
    while (pos < n) {
        size_t used = 0;
        int rc = satchel_imap_parser_feed(p, (const uint8_t *)line + pos, n - pos, &used, &r);
        pos += used;
        if (rc < 0)
            return NULL;
        if (rc == 1)
            return r;
        if (used == 0)
            return NULL;
    }
    return NULL;
}

static const satchel_imap_arg *fetch_list(const satchel_imap_resp *r)
{
    const satchel_imap_arg *a = r ? r->args : NULL;
    if (!a || !a->next || !satchel_imap_arg_is(a->next, "FETCH") || !a->next->next ||
        a->next->next->type != SATCHEL_ARG_LIST)
        return NULL;
    return a->next->next;
}

#define ENDS(field) FZ_CHECK(memchr((field), 0, sizeof(field)) != NULL, "%s unterminated", #field)

static void check_record(const satchel_msg *m, const struct fetch_items *it)
{
    size_t n;
    ENDS(m->subject);
    ENDS(m->from);
    ENDS(m->message_id);
    ENDS(m->preview);
    ENDS(m->keywords);
    ENDS(m->bodystructure);
    FZ_CHECK(m->uid == it->uid, "uid %u != items' %u", m->uid, it->uid);
    FZ_CHECK((m->flags & ~0x1fu) == 0, "flags 0x%x beyond system bits", m->flags);
    n = strlen(m->bodystructure);
    FZ_CHECK(n == 0 || (m->bodystructure[0] == '(' && m->bodystructure[n - 1] == ')'),
             "bodystructure not a list: %s", m->bodystructure);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    satchel_imap_parser *p = NULL;
    const satchel_imap_resp *r;
    const satchel_imap_arg *list;
    struct fetch_items it;
    fz_buf line = {0};
    if (size > 65536 || satchel_imap_parser_new(NULL, NULL, &p) < 0)
        return 0;
    fz_buf_puts(&line, "* 1 FETCH (");
    fz_buf_put(&line, data, size);
    fz_buf_puts(&line, ")\r\n");
    r = parse(p, line.p, line.n);
    if ((list = fetch_list(r)) != NULL && !r->truncated) {
        fetch_map_items(list, &it);
        fetch_map_msg(&it, &m1, hdr, sizeof hdr);
        check_record(&m1, &it);
        if (m1.bodystructure[0]) {
            /* The stored form maps to itself. */
            fz_buf_reset(&line);
            fz_buf_puts(&line, "* 1 FETCH (BODYSTRUCTURE ");
            fz_buf_puts(&line, m1.bodystructure);
            fz_buf_puts(&line, ")\r\n");
            satchel_imap_parser_reset(p);
            r = parse(p, line.p, line.n);
            list = fetch_list(r);
            FZ_CHECK(list != NULL && !r->truncated, "stored BODYSTRUCTURE does not parse: %s",
                     m1.bodystructure);
            fetch_map_items(list, &it);
            fetch_map_msg(&it, &m2, hdr, sizeof hdr);
            check_record(&m2, &it);
            FZ_CHECK(strcmp(m1.bodystructure, m2.bodystructure) == 0,
                     "BODYSTRUCTURE changes on a second pass:\n%s\n%s", m1.bodystructure,
                     m2.bodystructure);
        }
    }
    fz_buf_free(&line);
    satchel_imap_parser_free(p);
    return 0;
}
