/* Compact message records (version 5, core/store_msgrec.c): data-driven.
 *
 * 1. Each message of the table survives encode and decode unchanged, from
 *    every-day corpus shapes to the extremes of every field.
 * 2. Typical records are small: the corpus's most common single-part
 *    message takes under 160 bytes.
 * 3. There is one encoding per record: an overlong varint, a BODYSTRUCTURE
 *    byte written out where the coder would use a token, an unknown token,
 *    a NUL in a string, or a zone out of range is refused even with a good
 *    CRC.
 * 4. A version 4 record (fixed-width fields) still reads.
 * 5. The BODYSTRUCTURE coder writes exactly what a plain greedy coder over
 *    the same token list writes (the longest token at each point, the
 *    first of equals, else the byte), for random structures built from
 *    tokens, cut tokens and loose bytes (seed printed; SATCHEL_SEED
 *    repeats a run): a stored record decodes only when it re-encodes to
 *    the same bytes, so any other output would make old records
 *    unreadable.  The measured length (no buffer) is the written one, for
 *    random messages with every field random too, and they read back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/store_internal.h"
#include "check.h"

static satchel_msg m, out;
static uint8_t rec[MSG_REC_MAX + 64], alt[MSG_REC_MAX + 64];

struct row {
    const char *what;
    uint32_t flags, size;
    int64_t internaldate, date;
    int16_t itz, dtz;
    uint64_t modseq;
    const char *from, *subject, *bs, *preview;
};

static const struct row rows[] = {
    {"corpus single part", 0, 1654, 1030000000, 1029999000, 60, -420, 5,
     "Chris <cfortune@telus.net>", "[SAtalk] Running SA as a user app?",
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1654 50 NIL NIL NIL NIL)",
     ""},
    {"multipart with a file name", 3, 40000, 1700000000, 1700000000, 0, 0, 1,
     "a@b", "s",
     "((\"text\" \"plain\" (\"charset\" \"utf-8\" \"format\" \"flowed\") NIL NIL "
     "\"quoted-printable\" 12 1 NIL NIL NIL NIL)(\"application\" \"octet-stream\" "
     "(\"name\" \"r\xc3\xa9sum\xc3\xa9.pdf\") NIL NIL \"base64\" 39000 NIL "
     "(\"attachment\" (\"filename\" \"r\xc3\xa9sum\xc3\xa9.pdf\")) NIL NIL) \"mixed\" "
     "(\"boundary\" \"----=_Part_1\") NIL NIL NIL)",
     "Hello there"},
    {"extremes", UINT32_MAX, UINT32_MAX, INT64_MIN, INT64_MAX, -1440, 1440, UINT64_MAX,
     "", "", "", ""},
    {"tokens back to back and partial", 0, 0, 0, -1, 1440, -1440, 0, "x", "y",
     "NIL NIL NIL NIL NIL) NIL)NIL \"text\" \"text\"\"plain\" (\"charset\" \"us-ascii\"",
     ""},
    {"control and 8-bit bytes", 0, 1, 1, 1, 0, 0, 127, "\x01\x7f\xff", "\t",
     "(\"x\x01\" \"\xff\xfe\" NIL)", "\x1b[2J"},
};

static void fill(const struct row *r)
{
    memset(&m, 0, sizeof m);
    m.uid = 4242;
    m.flags = r->flags;
    m.size = r->size;
    m.mflags = 0;
    m.internaldate = r->internaldate;
    m.date = r->date;
    m.internaldate_tz = r->itz;
    m.date_tz = r->dtz;
    m.modseq = r->modseq;
    snprintf(m.keywords, sizeof m.keywords, "$Forwarded");
    snprintf(m.from, sizeof m.from, "%s", r->from);
    snprintf(m.subject, sizeof m.subject, "%s", r->subject);
    snprintf(m.message_id, sizeof m.message_id, "<%u@example.org>", 4242u);
    snprintf(m.bodystructure, sizeof m.bodystructure, "%s", r->bs);
    snprintf(m.preview, sizeof m.preview, "%s", r->preview);
}

/* Re-seal a hand-made variant so that only the layout rule can refuse it. */
static size_t seal(uint8_t *b, size_t len)
{
    uint8_t k[4];
    be32(k, 4242);
    return store_seal(b, len, k, sizeof k);
}

/* The token list as stored records know it (core/store_msgrec.c): a
 * token's index is on disk, so this list never changes. */
static const char *const ref_tok[] = {
    "(\"text\" \"plain\" ", "(\"text\" \"html\" ", "(\"charset\" \"us-ascii\") ",
    "(\"charset\" \"iso-8859-1\") ", "(\"charset\" \"iso-8859-15\") ",
    "(\"charset\" \"utf-8\") ", "(\"charset\" \"windows-1252\") ",
    "(\"charset\" \"US-ASCII\") ", "(\"charset\" \"ISO-8859-1\") ",
    "(\"charset\" \"UTF-8\") ", "(\"charset\" ", "NIL NIL \"7bit\" ", "NIL NIL \"8bit\" ",
    "NIL NIL \"quoted-printable\" ", "NIL NIL \"base64\" ", "NIL NIL \"7BIT\" ",
    "NIL NIL \"8BIT\" ", "NIL NIL \"QUOTED-PRINTABLE\" ", "NIL NIL \"BASE64\" ",
    " NIL NIL NIL NIL)", " NIL NIL NIL)", " NIL NIL)", " NIL)", "\"multipart\" ",
    "\"alternative\" ", "\"mixed\" ", "\"related\" ", "\"signed\" ", "\"report\" ",
    "(\"boundary\" \"", "\"application\" ", "\"octet-stream\" ", "\"pgp-signature\" ",
    "\"image\" ", "\"message\" ", "\"rfc822\" ", "(\"name\" \"", "(\"filename\" \"",
    "(\"attachment\" ", "(\"inline\" ", "(\"format\" \"flowed\") ", "\"text\" ",
    "\"plain\" ", "\"html\" ", "\"7bit\" ", "\"8bit\" ", "\"base64\" ",
    "\"quoted-printable\" ", "\"us-ascii\"", "\"iso-8859-1\"", "\"utf-8\"",
    "\"charset\" ", "NIL NIL ", "NIL ", "NIL)",
};
#define REF_NTOK (sizeof ref_tok / sizeof ref_tok[0])

/* The plain greedy coder: every token tried at every byte. */
static size_t ref_code(const char *s, uint8_t *dst)
{
    size_t i = 0, o = 0, t;
    while (s[i]) {
        size_t best = 0, bl = 0;
        for (t = 0; t < REF_NTOK; t++) {
            size_t l = strlen(ref_tok[t]);
            if (l > bl && strncmp(s + i, ref_tok[t], l) == 0) {
                best = t;
                bl = l;
            }
        }
        if (bl) {
            dst[o++] = 0;
            dst[o++] = (uint8_t)best;
            i += bl;
        } else {
            dst[o++] = (uint8_t)s[i++];
        }
    }
    return o;
}

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

/* A structure of up to max-1 bytes: whole tokens, tokens cut short, and
 * loose bytes, mostly the ones tokens begin or end with. */
static void random_bs(char *s, size_t max)
{
    static const char loose[] = "(\" N)IL\"";
    size_t n = 0, want = 1 + rnd((uint32_t)(rnd(8) ? 200 : max - 1));
    while (n < want && n + 1 < max) {
        uint32_t k = rnd(10);
        const char *p;
        size_t l;
        char b;
        if (k < 5) {
            p = ref_tok[rnd((uint32_t)REF_NTOK)];
            l = strlen(p);
            if (k == 4 && l > 1)
                l = 1 + rnd((uint32_t)(l - 1)); /* cut short */
        } else {
            b = k < 8 ? loose[rnd(sizeof loose - 1)] : (char)(1 + rnd(255));
            p = &b;
            l = 1;
        }
        if (l > max - 1 - n)
            l = max - 1 - n;
        memcpy(s + n, p, l);
        n += l;
    }
    s[n] = '\0';
}

/* Point 5: the coder against the reference, and measure against write. */
static void run_coder_equivalence(void)
{
    static uint8_t want[2 * SATCHEL_OPT_MAX_BODYSTRUCTURE];
    const char *env = getenv("SATCHEL_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    unsigned i, bad = 0, n = 20000;
    printf("coder equivalence: seed %llu (SATCHEL_SEED=%llu repeats it)\n",
           (unsigned long long)seed, (unsigned long long)seed);
    rng_state = seed;
    for (i = 0; i < n && bad < 5; i++) {
        size_t wl, p = 13;
        uint64_t clen = 0;
        unsigned sh = 0;
        int len, measured;
        memset(&m, 0, sizeof m);
        m.uid = 4242;
        random_bs(m.bodystructure, sizeof m.bodystructure);
        wl = ref_code(m.bodystructure, want);
        measured = satchel_store_msg_encode(&m, NULL, 0);
        len = satchel_store_msg_encode(&m, rec, sizeof rec);
        /* version, eight one-byte zero varints, four empty strings: the
         * structure's length varint is at byte 13 */
        while (len > 0 && p < (size_t)len) {
            clen |= (uint64_t)(rec[p] & 0x7f) << sh;
            sh += 7;
            if (!(rec[p++] & 0x80))
                break;
        }
        if (len <= 0 || measured != len || clen != wl || p + wl > (size_t)len ||
            memcmp(rec + p, want, wl) != 0 ||
            satchel_store_msg_decode(rec, (size_t)len, 4242, &out) != 0 ||
            strcmp(out.bodystructure, m.bodystructure) != 0) {
            bad++;
            CHECK(0, "coder: structure %u of seed %llu (%zu bytes) coded %d/%d bytes, "
                     "reference %zu", i, (unsigned long long)seed,
                  strlen(m.bodystructure), len, measured, wl);
            check_show(m.bodystructure,
                       strlen(m.bodystructure) < 120 ? strlen(m.bodystructure) : 120);
            printf("\n");
        }
    }
    CHECK(bad == 0, "coder: %u of %u random structures coded differently", bad, i);
    printf("coder equivalence: %u random structures, %u differ\n", i, bad);
    /* Whole messages with every field random: the measure is the record's
     * length, and the record gives the message back. */
    for (i = 0, bad = 0; i < 5000 && bad < 5; i++) {
        int len, measured;
        size_t j;
        char *str[5];
        size_t cap[5];
        memset(&m, 0, sizeof m);
        m.uid = 4242;
        m.flags = rnd(4) ? rnd(64) : (uint32_t)rng_state;
        m.size = rnd(2) ? rnd(100000) : rng_state >> 1;
        m.mflags = rnd(4);
        m.internaldate = (int64_t)(rng_state >> rnd(64)) * (rnd(2) ? 1 : -1);
        m.date = m.internaldate + (int64_t)rnd(200000) - 100000;
        m.internaldate_tz = (int16_t)((int)rnd(2881) - 1440);
        m.date_tz = (int16_t)((int)rnd(2881) - 1440);
        m.modseq = rnd(2) ? rnd(1000) : rng_state;
        str[0] = m.keywords, cap[0] = sizeof m.keywords;
        str[1] = m.from, cap[1] = sizeof m.from;
        str[2] = m.subject, cap[2] = sizeof m.subject;
        str[3] = m.message_id, cap[3] = sizeof m.message_id;
        str[4] = m.preview, cap[4] = sizeof m.preview;
        for (j = 0; j < 5; j++) {
            size_t sl = rnd(8) ? rnd(40) : rnd((uint32_t)cap[j]), q;
            for (q = 0; q < sl; q++)
                str[j][q] = (char)(1 + rnd(255));
            str[j][sl] = '\0';
        }
        random_bs(m.bodystructure, sizeof m.bodystructure);
        measured = satchel_store_msg_encode(&m, NULL, 0);
        len = satchel_store_msg_encode(&m, rec, sizeof rec);
        if (len <= 0 || measured != len ||
            satchel_store_msg_decode(rec, (size_t)len, 4242, &out) != 0 ||
            memcmp(&m, &out, sizeof m) != 0) {
            bad++;
            CHECK(0, "record: message %u of seed %llu: measured %d, written %d", i,
                  (unsigned long long)seed, measured, len);
        }
    }
    CHECK(bad == 0, "record: %u of %u random messages measured or read back wrong", bad, i);
    printf("measure and round trip: %u random messages, %u wrong\n", i, bad);
}

int main(void)
{
    size_t i;
    int len;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        fill(&rows[i]);
        len = satchel_store_msg_encode(&m, rec, sizeof rec);
        CHECK(len > 0 && rec[0] == MSG_REC_COMPACT, "%s: encode (%d)", rows[i].what, len);
        if (len <= 0)
            continue;
        CHECK(satchel_store_msg_decode(rec, (size_t)len, 4242, &out) == 0 &&
                  memcmp(&m, &out, sizeof m) == 0,
              "%s: decode gives the message back", rows[i].what);
        CHECK(satchel_store_msg_decode(rec, (size_t)len, 4243, &out) < 0,
              "%s: another UID's key does not fit", rows[i].what);
        printf("%-32s %4d bytes\n", rows[i].what, len);
        if (i == 0)
            CHECK(len < 160, "corpus single part in under 160 bytes (%d)", len);
    }

    /* One encoding per record. */
    fill(&rows[0]);
    len = satchel_store_msg_encode(&m, rec, sizeof rec);
    {
        /* flags is the byte after the version: 0 as 0x80 0x00 */
        size_t n = (size_t)len - REC_CRC;
        alt[0] = rec[0];
        alt[1] = 0x80;
        alt[2] = 0x00;
        memcpy(alt + 3, rec + 2, n - 2);
        n = seal(alt, n + 1);
        CHECK(satchel_store_msg_decode(alt, n, 4242, &out) < 0, "overlong varint refused");
    }
    {
        /* The BODYSTRUCTURE's first token (NUL, index) written as its text. */
        size_t n = (size_t)len - REC_CRC, p, q = 0;
        const char *tok = "(\"text\" \"plain\" ";
        for (p = 0; p + 1 < n && !(rec[p] == 0 && rec[p + 1] == 0); p++)
            ;
        CHECK(p + 1 < n, "the corpus record uses token 0");
        memcpy(alt, rec, p);
        q = p;
        memcpy(alt + q, tok, strlen(tok));
        q += strlen(tok);
        memcpy(alt + q, rec + p + 2, n - p - 2);
        q += n - p - 2;
        /* its length varint sits just before: one byte here */
        alt[p - 1] = (uint8_t)(rec[p - 1] + strlen(tok) - 2);
        q = seal(alt, q);
        CHECK(satchel_store_msg_decode(alt, q, 4242, &out) < 0,
              "a token written out in full is refused");
        memcpy(alt, rec, (size_t)len);
        alt[p + 1] = 250; /* no such token */
        CHECK(satchel_store_msg_decode(alt, seal(alt, (size_t)len - REC_CRC), 4242, &out) < 0,
              "an unknown token is refused");
    }
    {
        size_t n = (size_t)len - REC_CRC;
        fill(&rows[0]);
        m.internaldate_tz = 1441;
        len = satchel_store_msg_encode(&m, rec, sizeof rec);
        CHECK(len > 0 && satchel_store_msg_decode(rec, (size_t)len, 4242, &out) < 0,
              "a zone beyond 24 hours is refused");
        (void)n;
    }
    {
        /* A NUL inside the From string (its length byte follows "$Forwarded"). */
        size_t n, p;
        fill(&rows[0]);
        len = satchel_store_msg_encode(&m, rec, sizeof rec);
        n = (size_t)len - REC_CRC;
        for (p = 0; p + 10 < n && memcmp(rec + p, "$Forwarded", 10) != 0; p++)
            ;
        memcpy(alt, rec, n);
        alt[p + 10 + 1] = 0;
        CHECK(satchel_store_msg_decode(alt, seal(alt, n), 4242, &out) < 0,
              "a NUL in a string is refused");
    }
    for (i = 0; i < (size_t)len; i++)
        CHECK(satchel_store_msg_decode(rec, i, 4242, &out) < 0, "truncated at %zu", i);

    /* Version 4: fixed-width fields, 2-byte lengths, CRC over key and value. */
    {
        size_t p = MSG_REC_FIXED;
        const char *s[6] = {"$Forwarded", "a@b", "subj", "<1@x>", "(\"text\" \"plain\" NIL)", ""};
        int j;
        memset(alt, 0, sizeof alt);
        alt[0] = 4;
        le32(alt + 1, 1);
        le32(alt + 5, 77);
        le64(alt + 13, 1700000000u);
        le64(alt + 21, 1700000000u);
        alt[29] = 60;
        for (j = 0; j < 6; j++) {
            size_t n = strlen(s[j]);
            alt[p] = (uint8_t)n;
            alt[p + 1] = 0;
            memcpy(alt + p + 2, s[j], n);
            p += 2 + n;
        }
        p = seal(alt, p);
        CHECK(satchel_store_msg_decode(alt, p, 4242, &out) == 0 && out.size == 77 &&
                  out.internaldate_tz == 60 && strcmp(out.subject, "subj") == 0 &&
                  strcmp(out.bodystructure, "(\"text\" \"plain\" NIL)") == 0,
              "a version 4 record still reads");
    }
    run_coder_equivalence();
    return check_report("test_msgrec");
}
