/* fuzz_seqset: sequence sets as in VANISHED, COPYUID and ESEARCH.
 *
 * Input: [star: 4 bytes little-endian][set text].
 * The iterator must agree range for range with a naive reference parser
 * written from the contract in seqset.h (elements "n" or "n:m", n a decimal
 * 1..2^32-1 or '*', separated by single commas; ranges come out with
 * lo <= hi; anything else is SATCHEL_E_PROTO after the ranges before it).
 * The same text is then sent through the response parser as
 * "* VANISHED (EARLIER) <set>" and, when it comes back as one atom equal to
 * the input, iterated again from the parsed tree. */
#include "fuzz_common.h"

#include "satchel/seqset.h"

#define MAX_RANGES 4096

struct range {
    uint32_t lo, hi;
};

/* Returns the number of ranges, negated minus one on error (so -1 means an
 * error before any range). */
static long ref_parse(const char *s, size_t len, uint32_t star,
                      struct range *out, size_t max)
{
    size_t i = 0;
    long n = 0;
    if (len == 0)
        return 0;
    for (;;) {
        uint32_t v[2];
        int k;
        for (k = 0; k < 2; k++) {
            if (i < len && s[i] == '*') {
                v[k] = star;
                i++;
            } else {
                uint64_t x = 0;
                size_t st = i;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                    x = x * 10u + (uint64_t)(s[i] - '0');
                    if (x > UINT32_MAX)
                        return -n - 1;
                    i++;
                }
                if (i == st || x == 0)
                    return -n - 1;
                v[k] = (uint32_t)x;
            }
            if (k == 0) {
                if (i < len && s[i] == ':') {
                    i++;
                    continue;
                }
                v[1] = v[0];
                break;
            }
        }
        if (i < len && s[i] != ',')
            return -n - 1;
        if ((size_t)n < max) {
            out[n].lo = v[0] < v[1] ? v[0] : v[1];
            out[n].hi = v[0] < v[1] ? v[1] : v[0];
        }
        n++;
        if (i == len)
            return n;
        i++; /* the comma */
        if (i == len)
            return -n - 1; /* trailing comma */
    }
}

static void check_iter(const char *s, size_t len, uint32_t star,
                       const struct range *ref, long ref_n)
{
    satchel_seqset_iter it;
    size_t n = 0, want = (size_t)(ref_n < 0 ? -ref_n - 1 : ref_n);
    int rc;
    uint32_t lo, hi;
    satchel_seqset_init(&it, s, len, star);
    for (;;) {
        lo = hi = 0xdeadbeefu;
        rc = satchel_seqset_next(&it, &lo, &hi);
        if (rc != 1)
            break;
        FZ_CHECK(lo <= hi, "range %u:%u not normalised", lo, hi);
        FZ_CHECK(n < want, "iterator gave more ranges than the reference (%zu)",
                 want);
        if (n < MAX_RANGES)
            FZ_CHECK(lo == ref[n].lo && hi == ref[n].hi,
                     "range %zu is %u:%u, reference %u:%u", n, lo, hi,
                     ref[n].lo, ref[n].hi);
        FZ_CHECK(it.pos <= len, "iterator ran past the end");
        n++;
        FZ_CHECK(n <= len, "more ranges than bytes");
    }
    FZ_CHECK(n == want, "iterator gave %zu ranges, reference %zu", n, want);
    FZ_CHECK(rc == (ref_n < 0 ? SATCHEL_E_PROTO : 0),
             "iterator ended with %d, reference %s", rc,
             ref_n < 0 ? "error" : "ok");
    if (rc == 0) {
        /* Stays at the end. */
        FZ_CHECK(satchel_seqset_next(&it, &lo, &hi) == 0, "not sticky at end");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct range ref[MAX_RANGES];
    satchel_imap_parser *p;
    uint32_t star;
    const char *s;
    size_t len;
    long ref_n;

    if (size < 4 || size > 65536)
        return 0;
    star = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
           (uint32_t)data[3] << 24;
    s = (const char *)data + 4;
    len = size - 4;
    ref_n = ref_parse(s, len, star, ref, MAX_RANGES);
    check_iter(s, len, star, ref, ref_n);

    /* Through the parser, as the client sees it. */
    if (satchel_imap_parser_new(NULL, NULL, &p) == 0) {
        static const char pre[] = "* VANISHED (EARLIER) ";
        char *line = malloc(sizeof pre + len + 2);
        const satchel_imap_resp *r = NULL;
        size_t used = 0, n;
        int rc;
        if (!line)
            abort();
        memcpy(line, pre, sizeof pre - 1);
        memcpy(line + sizeof pre - 1, s, len);
        memcpy(line + sizeof pre - 1 + len, "\r\n", 2);
        n = sizeof pre - 1 + len + 2;
        rc = satchel_imap_parser_feed(p, (const uint8_t *)line, n, &used, &r);
        if (rc == 1) {
            const satchel_imap_arg *a = r->args;
            fz_check_resp(r, 48);
            if (a && a->next && a->next->type == SATCHEL_ARG_LIST &&
                a->next->next && a->next->next->type == SATCHEL_ARG_ATOM &&
                !a->next->next->next) {
                const satchel_imap_arg *set = a->next->next;
                if (set->len == len && memcmp(set->str, s, len) == 0)
                    check_iter(set->str, set->len, star, ref, ref_n);
                /* Whatever the atom is, iterating it must be safe. */
                {
                    satchel_seqset_iter it;
                    uint32_t lo, hi, k = 0;
                    satchel_seqset_init(&it, set->str, set->len, UINT32_MAX);
                    while (satchel_seqset_next(&it, &lo, &hi) == 1 &&
                           k++ <= set->len)
                        FZ_CHECK(lo <= hi && lo >= 1, "range %u:%u", lo, hi);
                }
            }
        }
        free(line);
        satchel_imap_parser_free(p);
    }
    return 0;
}
