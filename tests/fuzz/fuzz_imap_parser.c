/* fuzz_imap_parser: whole server sessions through the response parser.
 *
 * Input: [config][chunk seed] then server bytes.
 *   config bits 0-1: parser limits preset (default, tiny, small, tiny
 *                    literals); bit 2: literal sink installed; bit 3: the
 *                    sink refuses the first chunk of the (config>>4)+1-th
 *                    literal.
 * The stream is parsed twice, whole and split (at sizes drawn from the chunk
 * seed; seed 0 means one byte at a time), and the dumps of every response,
 * every literal the sink saw and every error with its position must be
 * identical.  After an error the parser is reset and resumes after the
 * next LF, so one input exercises many responses.  Every response's tree is
 * checked for internal consistency. */
#include "fuzz_common.h"

#include "satchel/opt.h"

struct sink_state {
    fz_buf *log;
    int refuse_at; /* literal number whose first chunk is refused, or -1 */
    int lit_no;
    uint64_t off, total;
    char item[128];
};

static int sink(void *ctx, const char *item, uint64_t off, uint64_t total,
                const uint8_t *data, size_t len)
{
    struct sink_state *s = ctx;
    FZ_CHECK(item != NULL && data != NULL && len > 0, "sink args");
    FZ_CHECK(off + len <= total, "sink chunk past the literal: %llu+%zu > %llu",
             (unsigned long long)off, len, (unsigned long long)total);
    if (off == 0) {
        s->lit_no++;
        if (s->lit_no == s->refuse_at) {
            fz_buf_printf(s->log, "\nREFUSED %d\n", s->lit_no);
            return SATCHEL_E_RANGE;
        }
        snprintf(s->item, sizeof s->item, "%s", item);
        s->total = total;
        s->off = 0;
        fz_buf_printf(s->log, "\nLIT %s %llu:", item, (unsigned long long)total);
    } else {
        FZ_CHECK(strncmp(item, s->item, sizeof s->item - 1) == 0,
                 "sink item changed within a literal: '%s' then '%s'", s->item,
                 item);
        FZ_CHECK(total == s->total, "sink total changed within a literal");
    }
    FZ_CHECK(off == s->off, "sink offset %llu, expected %llu",
             (unsigned long long)off, (unsigned long long)s->off);
    s->off = off + len;
    fz_buf_put(s->log, data, len);
    return 0;
}

/* Exercise the helpers on every argument (for the sanitizers). */
static void walk(const satchel_imap_arg *a)
{
    for (; a; a = a->next) {
        uint64_t v;
        uint32_t u;
        const char *s;
        uint32_t n;
        int rc = satchel_imap_arg_u64(a, UINT64_MAX, &v);
        FZ_CHECK(rc == 0 || rc == SATCHEL_E_PROTO || rc == SATCHEL_E_RANGE,
                 "arg_u64 rc %d", rc);
        rc = satchel_imap_arg_u32(a, &u);
        FZ_CHECK(rc == 0 || rc == SATCHEL_E_PROTO || rc == SATCHEL_E_RANGE,
                 "arg_u32 rc %d", rc);
        if (satchel_imap_arg_string(a, &s, &n))
            FZ_CHECK(s != NULL && s[n] == '\0', "arg_string");
        (void)satchel_imap_arg_is(a, "FETCH");
        if (a->type == SATCHEL_ARG_LIST)
            walk(a->child);
    }
}

static void parse_all(const satchel_imap_parser_config *cfg, unsigned max_depth,
                      const uint8_t *in, size_t len, uint8_t seed,
                      int use_sink, int refuse_at, fz_buf *dump, fz_buf *lits)
{
    satchel_imap_parser *p;
    struct sink_state ss;
    fz_chunker ch;
    size_t pos = 0;
    int rc = satchel_imap_parser_new(NULL, cfg, &p);
    FZ_CHECK(rc == 0, "parser_new rc %d", rc);
    memset(&ss, 0, sizeof ss);
    ss.log = lits;
    ss.refuse_at = refuse_at;
    if (use_sink)
        satchel_imap_parser_set_sink(p, sink, &ss);
    fz_chunker_init(&ch, seed);
    if (seed == 0)
        ch.max = 1; /* the "split" run of seed 0 is byte at a time */
    if (seed == 255)
        ch.max = 0; /* whole */
    while (pos < len) {
        size_t n = fz_chunk(&ch, len - pos), off = 0;
        while (off < n) {
            const satchel_imap_resp *r = NULL;
            size_t used = 99999;
            rc = satchel_imap_parser_feed(p, in + pos + off, n - off, &used, &r);
            FZ_CHECK(used <= n - off, "consumed %zu of %zu", used, n - off);
            off += used;
            if (rc == 1) {
                FZ_CHECK(r != NULL, "rc 1 without a response");
                fz_check_resp(r, max_depth);
                walk(r->args);
                walk(r->code);
                fz_dump_resp(dump, r);
            } else if (rc == 0) {
                FZ_CHECK(used == n - (off - used), "rc 0 but input left");
                FZ_CHECK(r == NULL, "rc 0 with a response");
            } else {
                size_t at = pos + off, k;
                const char *why = satchel_imap_parser_error(p);
                const satchel_imap_resp *r2 = NULL;
                size_t used2 = 0;
                FZ_CHECK(rc == SATCHEL_E_PROTO || rc == SATCHEL_E_PROTO_LIMIT ||
                             (refuse_at > 0 && rc == SATCHEL_E_RANGE),
                         "feed rc %d", rc);
                FZ_CHECK(why != NULL && why[0] != '\0', "no error text");
                /* Refuses input until reset. */
                if (off < n) {
                    int rc2 = satchel_imap_parser_feed(p, in + pos + off, n - off,
                                                       &used2, &r2);
                    FZ_CHECK(rc2 < 0 && used2 == 0 && r2 == NULL,
                             "input accepted after an error");
                }
                fz_buf_printf(dump, "ERR %d at %zu: %s\n", rc, at, why);
                satchel_imap_parser_reset(p);
                /* Resume after the next LF. */
                for (k = at; k < len && in[k] != '\n'; k++)
                    ;
                if (k < len)
                    k++;
                pos = k;
                n = 0;
                off = 0;
                break;
            }
        }
        pos += off;
    }
    fz_buf_printf(dump, "END\n");
    satchel_imap_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fz_buf d1, d2, l1, l2;
    satchel_imap_parser_config cfg;
    unsigned max_depth = SATCHEL_OPT_MAX_DEPTH;
    uint8_t conf, seed;
    int refuse_at = -1;

    if (size < 2 || size > 1u << 20)
        return 0;
    conf = data[0];
    seed = data[1];
    data += 2;
    size -= 2;
    memset(&cfg, 0, sizeof cfg);
    switch (conf & 3) {
    case 1: /* everything tiny: arena, lines, nesting, inline literals */
        cfg.arena_size = 256;
        cfg.max_line = 200;
        cfg.literal_inline = 16;
        cfg.max_depth = 4;
        cfg.max_literal = 1000;
        max_depth = 4;
        break;
    case 2:
        cfg.arena_size = 1024;
        cfg.literal_inline = 100;
        cfg.max_depth = 12;
        max_depth = 12;
        break;
    case 3:
        cfg.literal_inline = 1;
        cfg.max_literal = 64;
        break;
    default:
        break;
    }
    if (conf & 8)
        refuse_at = (conf >> 4) + 1;

    fz_buf_reset(&d1);
    fz_buf_reset(&d2);
    fz_buf_reset(&l1);
    fz_buf_reset(&l2);
    parse_all(&cfg, max_depth, data, size, 255, conf & 4, refuse_at, &d1, &l1);
    parse_all(&cfg, max_depth, data, size, seed, conf & 4, refuse_at, &d2, &l2);
    if (d1.n != d2.n || memcmp(d1.p, d2.p, d1.n) != 0) {
        size_t i = 0, from;
        while (i < d1.n && i < d2.n && d1.p[i] == d2.p[i])
            i++;
        from = i > 300 ? i - 300 : 0;
        fprintf(stderr, "whole:\n%.600s\nsplit (seed %u):\n%.600s\n",
                d1.p + from, seed, d2.p + from);
        FZ_CHECK(0, "whole and split feeds differ at dump byte %zu", i);
    }
    FZ_CHECK(l1.n == l2.n && (l1.n == 0 || memcmp(l1.p, l2.p, l1.n) == 0),
             "literal sink saw different data whole vs split");
    return 0;
}
