/* fuzz_mime: the MIME / RFC 5322 helpers on hostile input.
 *
 * Input: [op][param] then data.  op % 8 picks the function:
 *   0 decode_header   1 format_from   2 header_get (+ decode as the client
 *   does)   3 parse_date   4 parse_internaldate   5 to_utf8 (charset from
 *   param, or named by the data up to the first ':')   6 base64   7 QP.
 * Checked against the contract in mime.h: outputs NUL-terminated, valid
 * UTF-8 without control characters where promised, a cut output is a prefix
 * of the uncut one, dates survive a format/parse round trip, and the
 * streaming decoders give the same bytes for any split of the input and any
 * output buffer size. */
#include "fuzz_common.h"

#include "satchel/mime.h"

#define BIG 65536

static char big[BIG], small[BIG];

static void check_text(const char *out, int rc, size_t cap, int filtered,
                       const char *what)
{
    size_t n;
    FZ_CHECK(rc >= 0 || rc == SATCHEL_E_RANGE, "%s: rc %d", what, rc);
    if (cap == 0)
        return;
    n = strlen(out);
    FZ_CHECK(n < cap, "%s: output longer than cap", what);
    if (rc >= 0)
        FZ_CHECK((size_t)rc == n, "%s: rc %d but strlen %zu", what, rc, n);
    FZ_CHECK(fz_utf8_valid((const uint8_t *)out, n), "%s: invalid UTF-8 out",
             what);
    if (filtered) {
        size_t i;
        for (i = 0; i < n; i++) {
            uint8_t c = (uint8_t)out[i];
            FZ_CHECK(c >= 0x20 && c != 0x7f, "%s: control 0x%02x in output",
                     what, c);
            if (c == 0xC2 && i + 1 < n)
                FZ_CHECK((uint8_t)out[i + 1] < 0x80 ||
                             (uint8_t)out[i + 1] > 0x9F,
                         "%s: C1 control in output", what);
        }
    }
}

/* The cut result must be the uncut one's prefix, and not shorter than the
 * longest whole-character prefix that fits (a character is <= 4 bytes). */
static void check_cut(const char *full, int full_rc, const char *cut,
                      int cut_rc, size_t cap, int strict_len, const char *what)
{
    size_t fl = strlen(full), cl = strlen(cut);
    if (full_rc < 0)
        return; /* the big buffer itself was too small */
    FZ_CHECK(cl <= fl && memcmp(full, cut, cl) == 0,
             "%s: cap %zu output '%s' is not a prefix of '%s'", what, cap, cut,
             full);
    if (fl < cap && !strict_len) {
        /* format_from trims spaces after writing them, so a value whose
         * untrimmed form did not fit comes out whole but flagged as cut
         * (reported; harmless for callers that only display it). */
        FZ_CHECK((cl == fl && cut_rc == full_rc) || cut_rc == SATCHEL_E_RANGE,
                 "%s: fits in cap %zu but rc %d / len %zu (full %d)", what, cap,
                 cut_rc, cl, full_rc);
    } else if (fl < cap) {
        FZ_CHECK(cut_rc == full_rc && cl == fl,
                 "%s: fits in cap %zu but rc %d / len %zu (full %d)", what, cap,
                 cut_rc, cl, full_rc);
    } else {
        FZ_CHECK(cut_rc == SATCHEL_E_RANGE, "%s: cut without SATCHEL_E_RANGE",
                 what);
        if (strict_len)
            FZ_CHECK(cl + 4 >= cap, "%s: cut at %zu with cap %zu", what, cl, cap);
    }
}

typedef int (*text_fn)(const char *, size_t, char *, size_t);

static void text_op(text_fn fn, const char *in, size_t len, size_t cap,
                    int strict_len, const char *what)
{
    int rc_full, rc_cut, rc0;
    rc_full = fn(in, len, big, sizeof big);
    check_text(big, rc_full, sizeof big, 1, what);
    rc_cut = fn(in, len, small, cap);
    check_text(small, rc_cut, cap, 1, what);
    check_cut(big, rc_full, small, rc_cut, cap, strict_len, what);
    rc0 = fn(in, len, NULL, 0);
    FZ_CHECK(rc0 == SATCHEL_E_RANGE, "%s: cap 0 rc %d", what, rc0);
    /* Deterministic. */
    rc_cut = fn(in, len, small, sizeof big);
    FZ_CHECK(rc_cut == rc_full && strcmp(small, big) == 0, "%s: not repeatable",
             what);
}

static void check_date(int64_t e, int tz, const char *what)
{
    char iso[40], again[80];
    int64_t e2 = 0;
    int tz2 = 0, rc;
    FZ_CHECK(tz >= -5999 && tz <= 5999, "%s: zone %d", what, tz);
    /* Years 0000..9999 in the zone of the date, so within a few days. */
    FZ_CHECK(e >= -62167219200 - 5 * 86400 && e <= 253402300799 + 5 * 86400,
             "%s: epoch %lld", what, (long long)e);
    rc = satchel_mime_format_rfc3339(e, tz, iso, sizeof iso);
    FZ_CHECK(rc == 25 || rc == SATCHEL_E_RANGE, "%s: format rc %d", what, rc);
    if (rc != 25)
        return;
    FZ_CHECK(strlen(iso) == 25, "%s: iso length", what);
    {
        static const char *const mon[12] = {"Jan", "Feb", "Mar", "Apr",
                                            "May", "Jun", "Jul", "Aug",
                                            "Sep", "Oct", "Nov", "Dec"};
        int y, m, d, hh, mi, ss, zh, zm;
        char sign;
        FZ_CHECK(sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%c%2d:%2d", &y, &m, &d, &hh,
                        &mi, &ss, &sign, &zh, &zm) == 9,
                 "%s: cannot read back '%s'", what, iso);
        FZ_CHECK(m >= 1 && m <= 12, "%s: month in '%s'", what, iso);
        snprintf(again, sizeof again, "%d %s %04d %02d:%02d:%02d %c%02d%02d", d,
                 mon[m - 1], y, hh, mi, ss, sign, zh, zm);
        rc = satchel_mime_parse_date(again, strlen(again), &e2, &tz2);
        FZ_CHECK(rc == 0 && e2 == e && tz2 == tz,
                 "%s: '%s' -> '%s' parses as rc %d %lld %d, want %lld %d", what,
                 iso, again, rc, (long long)e2, tz2, (long long)e, tz);
        snprintf(again, sizeof again, "\"%02d-%s-%04d %02d:%02d:%02d %c%02d%02d\"",
                 d, mon[m - 1], y, hh, mi, ss, sign, zh, zm);
        rc = satchel_mime_parse_internaldate(again, strlen(again), &e2, &tz2);
        FZ_CHECK(rc == 0 && e2 == e && tz2 == tz,
                 "%s: internaldate '%s' rc %d", what, again, rc);
    }
}

/* Whether the charset decodes as UTF-8, found by behaviour. */
static int is_utf8_cs(const char *cs, size_t cslen)
{
    char out[8];
    size_t n = 0;
    return satchel_mime_to_utf8(cs, cslen, (const uint8_t *)"\xc3\xa9", 2, out,
                                sizeof out, &n) == 0 &&
           n == 2 && memcmp(out, "\xc3\xa9", 2) == 0;
}

/* Length of the valid UTF-8 sequence at s, else 1 (how header_get steps). */
static size_t seq_len(const uint8_t *s, size_t n)
{
    size_t k;
    if (n == 0)
        return 1;
    for (k = 1; k <= 4 && k <= n; k++)
        if (fz_utf8_valid(s, k))
            return k;
    return 1;
}

static const char *const charsets[] = {
    "UTF-8", "us-ascii", "ISO-8859-1", "iso-8859-15", "windows-1252",
    "latin1", "utf8", "koi8-r", "", "UTF-8*en"};

static void to_utf8_op(const char *cs, size_t cslen, const uint8_t *in,
                       size_t len, size_t cap)
{
    size_t ol = 99, ol2 = 99;
    int known = satchel_mime_charset_known(cs, cslen);
    int rc = satchel_mime_to_utf8(cs, cslen, in, len, big, sizeof big, &ol);
    int rc2;
    if (!known) {
        FZ_CHECK(rc == SATCHEL_E_NOTSUP && ol == 0 && big[0] == '\0',
                 "to_utf8 unknown charset: rc %d", rc);
        return;
    }
    FZ_CHECK(rc == 0 || rc == SATCHEL_E_RANGE, "to_utf8 rc %d", rc);
    FZ_CHECK(ol < sizeof big && big[ol] == '\0', "to_utf8 out_len");
    FZ_CHECK(fz_utf8_valid((const uint8_t *)big, ol), "to_utf8 invalid UTF-8");
    if (rc == 0) {
        if (fz_utf8_valid(in, len) && is_utf8_cs(cs, cslen))
            FZ_CHECK(ol == len && memcmp(big, in, len) == 0,
                     "to_utf8 changed valid UTF-8");
    }
    rc2 = satchel_mime_to_utf8(cs, cslen, in, len, small, cap, &ol2);
    FZ_CHECK(rc2 == 0 || rc2 == SATCHEL_E_RANGE, "to_utf8 cut rc %d", rc2);
    FZ_CHECK(ol2 < cap && small[ol2] == '\0', "to_utf8 cut out_len");
    FZ_CHECK(fz_utf8_valid((const uint8_t *)small, ol2), "to_utf8 cut UTF-8");
    if (rc == 0) {
        FZ_CHECK(ol2 <= ol && memcmp(small, big, ol2) == 0,
                 "to_utf8 cut output is not a prefix");
        FZ_CHECK((rc2 == 0) == (ol < cap), "to_utf8 cut rc %d, len %zu cap %zu",
                 rc2, ol, cap);
        if (rc2 < 0)
            FZ_CHECK(ol2 + 4 >= cap, "to_utf8 cut too early");
    }
    /* Streaming as documented: hold back utf8_tail bytes, prepend them to
     * the next chunk.  The result must equal the one-shot conversion. */
    if (rc == 0 && len > 0) {
        static uint8_t carry[BIG + 8];
        static fz_buf acc;
        size_t split = len / 2 + (len & 1), tail, k;
        fz_buf_reset(&acc);
        tail = satchel_mime_utf8_tail(in, split);
        FZ_CHECK(tail <= 3 && tail <= split, "utf8_tail %zu", tail);
        rc2 = satchel_mime_to_utf8(cs, cslen, in, split - tail, small,
                                   sizeof big, &ol2);
        FZ_CHECK(rc2 == 0, "stream part 1 rc %d", rc2);
        fz_buf_put(&acc, small, ol2);
        k = len - split + tail;
        memcpy(carry, in + split - tail, k);
        rc2 = satchel_mime_to_utf8(cs, cslen, carry, k, small, sizeof big, &ol2);
        FZ_CHECK(rc2 == 0, "stream part 2 rc %d", rc2);
        fz_buf_put(&acc, small, ol2);
        if (is_utf8_cs(cs, cslen))
            FZ_CHECK(acc.n == ol && memcmp(acc.p, big, ol) == 0,
                     "UTF-8 streamed with utf8_tail differs from one-shot "
                     "(split %zu, tail %zu)",
                     split, tail);
    }
}

static void b64_op(const uint8_t *in, size_t len, fz_chunker *ch)
{
    static uint8_t out1[BIG], out2[BIG];
    satchel_mime_b64 st;
    size_t n1 = 0, n2 = 0, pos = 0, used, guard = 0;
    satchel_mime_b64_init(&st);
    n1 = satchel_mime_b64_decode(&st, in, len, &used, out1, sizeof out1);
    FZ_CHECK(used == len, "b64 whole: consumed %zu of %zu", used, len);
    n1 += satchel_mime_b64_finish(&st, out1 + n1, sizeof out1 - n1);
    FZ_CHECK(n1 <= len * 3 / 4 + 1, "b64 output %zu for %zu input", n1, len);
    satchel_mime_b64_init(&st);
    while (pos < len) {
        size_t piece = fz_chunk(ch, len - pos), off = 0;
        while (off < piece) {
            size_t cap = 1 + fz_rand(ch) % 5, o;
            o = satchel_mime_b64_decode(&st, in + pos + off, piece - off, &used,
                                        out2 + n2, cap);
            FZ_CHECK(o <= cap && used <= piece - off, "b64 bounds");
            FZ_CHECK(o > 0 || used > 0, "b64 made no progress");
            n2 += o;
            off += used;
            FZ_CHECK(n2 <= sizeof out2 - 8, "b64 output overflow");
        }
        pos += piece;
    }
    while (satchel_mime_b64_finish(&st, out2 + n2, 1) > 0)
        FZ_CHECK(++guard < 16, "b64 finish never ends");
    FZ_CHECK(n1 == n2 && memcmp(out1, out2, n1) == 0,
             "b64 split differs from whole (%zu vs %zu bytes)", n2, n1);
}

static void qp_op(const uint8_t *in, size_t len, fz_chunker *ch)
{
    static uint8_t out1[BIG], out2[BIG];
    satchel_mime_qp st;
    size_t n1 = 0, n2 = 0, pos = 0, used, o, guard = 0;
    satchel_mime_qp_init(&st);
    n1 = satchel_mime_qp_decode(&st, in, len, &used, out1, sizeof out1);
    FZ_CHECK(used == len, "qp whole: consumed %zu of %zu", used, len);
    while ((o = satchel_mime_qp_finish(&st, out1 + n1, sizeof out1 - n1)) > 0) {
        n1 += o;
        FZ_CHECK(++guard < 1000, "qp finish never ends");
    }
    FZ_CHECK(n1 <= len, "qp output %zu longer than input %zu", n1, len);
    satchel_mime_qp_init(&st);
    while (pos < len) {
        size_t piece = fz_chunk(ch, len - pos), off = 0;
        while (off < piece) {
            size_t cap = 1 + fz_rand(ch) % 7;
            o = satchel_mime_qp_decode(&st, in + pos + off, piece - off, &used,
                                       out2 + n2, cap);
            FZ_CHECK(o <= cap && used <= piece - off, "qp bounds");
            FZ_CHECK(o > 0 || used > 0, "qp made no progress");
            n2 += o;
            off += used;
            FZ_CHECK(n2 <= len + 8, "qp output overflow");
        }
        pos += piece;
    }
    guard = 0;
    while ((o = satchel_mime_qp_finish(&st, out2 + n2, 1 + guard % 3)) > 0) {
        n2 += o;
        FZ_CHECK(++guard < 1000, "qp finish never ends");
    }
    FZ_CHECK(n1 == n2 && memcmp(out1, out2, n1) == 0,
             "qp split differs from whole (%zu vs %zu bytes)", n2, n1);
    /* The state is reset: a new body decodes from scratch. */
    o = satchel_mime_qp_decode(&st, (const uint8_t *)"A", 1, &used, out2, 4);
    FZ_CHECK(o == 1 && out2[0] == 'A', "qp not reset after finish");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t op, param;
    const char *in;
    size_t len, cap;
    fz_chunker ch;

    if (size < 2 || size > 16384)
        return 0;
    op = data[0] % 8;
    param = data[1];
    in = (const char *)data + 2;
    len = size - 2;
    cap = 1 + param % 80;
    fz_chunker_init(&ch, (uint8_t)(param | 1));

    switch (op) {
    case 0:
        text_op(satchel_mime_decode_header, in, len, cap, 1, "decode_header");
        break;
    case 1:
        text_op(satchel_mime_format_from, in, len, cap, 0, "format_from");
        break;
    case 2: {
        static const char *const names[] = {"Subject", "From", "Date",
                                            "Message-ID", "X", "subject"};
        const char *name = names[param % 6];
        int rc = satchel_mime_header_get(in, len, name, big, sizeof big);
        int rc2;
        FZ_CHECK(rc >= 0 || rc == SATCHEL_E_NOTFOUND || rc == SATCHEL_E_RANGE,
                 "header_get rc %d", rc);
        if (rc == SATCHEL_E_NOTFOUND) {
            FZ_CHECK(big[0] == '\0', "header_get not found but output");
            break;
        }
        FZ_CHECK(rc >= 0, "header_get: big buffer too small?");
        FZ_CHECK(big[rc] == '\0' && memchr(big, '\n', (size_t)rc) == NULL,
                 "header_get output has a line break or no NUL");
        memset(small, 0x55, cap + 1);
        rc2 = satchel_mime_header_get(in, len, name, small, cap);
        FZ_CHECK(rc2 == ((size_t)rc < cap ? rc : SATCHEL_E_RANGE),
                 "header_get cut rc %d (full %d, cap %zu)", rc2, rc, cap);
        FZ_CHECK((uint8_t)small[cap] == 0x55, "header_get wrote past cap");
        if (rc2 >= 0) {
            FZ_CHECK(memcmp(small, big, (size_t)rc2 + 1) == 0, "header_get cut");
        } else {
            /* The cut is at a character boundary of the full value: some
             * boundary k with small[0..k) == big[0..k) and small[k] == 0. */
            size_t k = 0, ok = 0;
            while (k < cap) {
                size_t step = seq_len((const uint8_t *)big + k, (size_t)rc - k);
                if (small[k] == '\0' && memcmp(small, big, k) == 0 &&
                    k + 4 >= cap)
                    ok = 1;
                k += step;
            }
            FZ_CHECK(ok, "header_get cut not at a character boundary");
        }
        /* What the client does with it. */
        rc = satchel_mime_decode_header(big, strlen(big), small, 256);
        check_text(small, rc, 256, 1, "decode_header(header_get)");
        rc = satchel_mime_format_from(big, strlen(big), small, 256);
        check_text(small, rc, 256, 1, "format_from(header_get)");
        break;
    }
    case 3: {
        int64_t e = 0x1234;
        int tz = 0x1234;
        int rc = satchel_mime_parse_date(in, len, &e, &tz);
        FZ_CHECK(rc == 0 || rc == SATCHEL_E_INVAL, "parse_date rc %d", rc);
        if (rc == 0)
            check_date(e, tz, "parse_date");
        else
            FZ_CHECK(e == 0x1234 && tz == 0x1234, "outputs touched on error");
        break;
    }
    case 4: {
        int64_t e = 0x1234;
        int tz = 0x1234;
        int rc = satchel_mime_parse_internaldate(in, len, &e, &tz);
        FZ_CHECK(rc == 0 || rc == SATCHEL_E_INVAL, "parse_internaldate rc %d", rc);
        if (rc == 0)
            check_date(e, tz, "parse_internaldate");
        else
            FZ_CHECK(e == 0x1234 && tz == 0x1234, "outputs touched on error");
        break;
    }
    case 5: {
        const char *colon = memchr(in, ':', len);
        if (param >= 200 && colon) {
            to_utf8_op(in, (size_t)(colon - in), (const uint8_t *)colon + 1,
                       len - (size_t)(colon - in) - 1, cap);
        } else {
            const char *cs = charsets[param % 10];
            to_utf8_op(cs, strlen(cs), (const uint8_t *)in, len, cap);
        }
        FZ_CHECK(satchel_mime_utf8_tail((const uint8_t *)in, len) <= 3,
                 "utf8_tail");
        break;
    }
    case 6:
        b64_op((const uint8_t *)in, len, &ch);
        break;
    default:
        qp_op((const uint8_t *)in, len, &ch);
        break;
    }
    return 0;
}
