#include "satchel/seqset.h"
#include "satchel/error.h"

void satchel_seqset_init(satchel_seqset_iter *it, const char *s, size_t len,
                         uint32_t star)
{
    it->s = s;
    it->len = len;
    it->pos = 0;
    it->star = star;
}

static int number(satchel_seqset_iter *it, uint32_t *out)
{
    uint64_t v = 0;
    size_t start = it->pos;
    if (it->pos < it->len && it->s[it->pos] == '*') {
        it->pos++;
        *out = it->star;
        return 0;
    }
    while (it->pos < it->len && it->s[it->pos] >= '0' && it->s[it->pos] <= '9') {
        v = v * 10u + (uint64_t)(it->s[it->pos] - '0');
        if (v > UINT32_MAX)
            return SATCHEL_E_PROTO;
        it->pos++;
    }
    if (it->pos == start || v == 0)
        return SATCHEL_E_PROTO;
    *out = (uint32_t)v;
    return 0;
}

int satchel_seqset_next(satchel_seqset_iter *it, uint32_t *lo, uint32_t *hi)
{
    uint32_t a, b;
    if (it->pos >= it->len)
        return 0;
    if (it->pos > 0) {
        if (it->s[it->pos] != ',' || ++it->pos >= it->len)
            return SATCHEL_E_PROTO; /* includes a trailing comma */
    }
    if (number(it, &a) < 0)
        return SATCHEL_E_PROTO;
    b = a;
    if (it->pos < it->len && it->s[it->pos] == ':') {
        it->pos++;
        if (number(it, &b) < 0)
            return SATCHEL_E_PROTO;
    }
    if (it->pos < it->len && it->s[it->pos] != ',')
        return SATCHEL_E_PROTO;
    *lo = a < b ? a : b;
    *hi = a < b ? b : a;
    return 1;
}

int satchel_seqset_pair(const char *src, size_t slen, const char *dst, size_t dlen,
                        uint32_t uid, uint32_t *out)
{
    satchel_seqset_iter it;
    uint32_t lo, hi;
    uint64_t k = 0;
    int rc, found = 0;
    satchel_seqset_init(&it, src, slen, UINT32_MAX);
    while ((rc = satchel_seqset_next(&it, &lo, &hi)) == 1) {
        if (uid >= lo && uid <= hi) {
            k += uid - lo;
            found = 1;
            break;
        }
        k += (uint64_t)(hi - lo) + 1u;
    }
    if (rc < 0)
        return SATCHEL_E_PROTO;
    if (!found)
        return 0;
    satchel_seqset_init(&it, dst, dlen, UINT32_MAX);
    while ((rc = satchel_seqset_next(&it, &lo, &hi)) == 1) {
        uint64_t n = (uint64_t)(hi - lo) + 1u;
        if (k < n) {
            *out = lo + (uint32_t)k;
            return 1;
        }
        k -= n;
    }
    return rc < 0 ? SATCHEL_E_PROTO : 0;
}
