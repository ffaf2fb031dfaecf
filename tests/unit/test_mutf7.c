/* Unit tests for core/mutf7.c: table-driven, no framework.
 * Prints one line per failed case, then "test_mutf7: N passed, M failed".
 * The random part prints its seed; SATCHEL_SEED=N repeats a run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "satchel/mutf7.h"

#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

static void ok(int cond, const char *what, const char *in, size_t n)
{
    if (cond) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL: %s ", what);
    check_show(in, n);
    putchar('\n');
}

/* Names both ways: RFC 3501 5.1.3's examples and the issue's. */
static const struct {
    const char *mutf7, *utf8;
} pairs[] = {
    {"~peter/mail/&U,BTFw-/&ZeVnLIqe-",
     "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
    {"&Jjo-!", "\xe2\x98\xba!"},
    {"Donn&AOk-es/&AMk-t&AOk-", "Donn\xc3\xa9" "es/\xc3\x89t\xc3\xa9"},
    {"Entw&APw-rfe-Ablage", "Entw\xc3\xbcrfe-Ablage"},
    {"Entw&APw-rfe", "Entw\xc3\xbcrfe"},
    {"&-", "&"},
    {"A&-B&-&-", "A&B&&"},
    {"&AOk-&-", "\xc3\xa9&"},
    {"INBOX", "INBOX"},
    {"", ""},
    {" [x] \"q\" \\b ~", " [x] \"q\" \\b ~"},
    {"&2D3eAA-", "\xf0\x9f\x98\x80"},
    {"a&2D3eAA-b&IKw-", "a\xf0\x9f\x98\x80" "b\xe2\x82\xac"},
    {"&AOkA6QDp-", "\xc3\xa9\xc3\xa9\xc3\xa9"},
    {"&A6kDvAOtA7MDsQ-", "\xce\xa9\xce\xbc\xce\xad\xce\xb3\xce\xb1"},
    {"&2,,f,w-", "\xf4\x8f\xbf\xbf"},
    {"&1,8-", "\xed\x9f\xbf"},
    {"&4AA-", "\xee\x80\x80"},
    {"&,,8-", "\xef\xbf\xbf"},
    {"&AAE-", "\x01"},
    {"&AH8-", "\x7f"},
    {"&BC8-", "\xd0\xaf"},
};

/* Wire names a server may send that RFC 3501 does not allow. */
static const struct {
    const char *in;
    size_t at;
    const char *why; /* a word the reason must contain */
} bad_mutf7[] = {
    {"&AGE-", 3, "printable"},          /* 'a' must stand for itself */
    {"&ACY-", 3, "printable"},          /* '&' too */
    {"&AOk", 0, "closing"},             /* never closed */
    {"a&", 1, "closing"},
    {"&AOk-&AOk-", 5, "in a row"},      /* must be one section */
    {"&AOl-", 4, "padding"},            /* non-zero padding bits */
    {"&AOkA-", 5, "padding"},           /* a whole extra 6-bit group */
    {"&AO-", 3, "padding"},             /* 12 bits: half a unit */
    {"&A,l-", 4, "padding"},
    {"&A/k-", 2, "base64"},             /* '/' is ',' here */
    {"&A=k-", 2, "base64"},
    {"&AOk=-", 4, "base64"},            /* no '=' padding */
    {"&2D0-", 4, "end of a shifted"},   /* lone high surrogate */
    {"&2D3YPQ-", 6, "high surrogate"},  /* high followed by high */
    {"&3gA-", 3, "low surrogate"},      /* lone low surrogate */
    {"&AAA-", 3, "NUL"},
    {"a\x80" "b", 1, "outside"},        /* 8-bit byte */
    {"\xc3\xa9", 0, "outside"},         /* raw UTF-8 */
    {"a\tb", 1, "outside"},
    {"a\x7f", 1, "outside"},
    {"&AO\x01-", 3, "base64"},
};

/* UTF-8 a console user could type that is no name. */
static const struct {
    const char *in;
    size_t len, at;
} bad_utf8[] = {
    {"\xc3", 1, 0},                 /* cut */
    {"ab\xc3(", 4, 2},
    {"\xc0\xaf", 2, 0},             /* overlong '/' */
    {"\xe0\x80\xaf", 3, 0},
    {"\xed\xa0\x80", 3, 0},         /* surrogate */
    {"\xf4\x90\x80\x80", 4, 0},     /* above U+10FFFF */
    {"\xf8\x88\x80\x80\x80", 5, 0},
    {"\xff", 1, 0},
    {"a\0b", 3, 1},                 /* NUL */
    {"x\x80", 2, 1},                /* lone continuation */
};

static void test_pairs(void)
{
    size_t i;
    char out[256];
    size_t n;
    satchel_mutf7_error e;
    for (i = 0; i < N_ELEM(pairs); i++) {
        const char *m = pairs[i].mutf7, *u = pairs[i].utf8;
        int rc = satchel_mutf7_decode(m, strlen(m), out, sizeof out, &n, &e);
        ok(rc == 0 && n == strlen(u) && memcmp(out, u, n) == 0 && out[n] == '\0',
           "decode", m, strlen(m));
        ok(n <= strlen(m), "decode grows", m, strlen(m));
        ok(satchel_mutf7_valid(m, strlen(m)), "valid", m, strlen(m));
        rc = satchel_mutf7_encode(u, strlen(u), out, sizeof out, &n, &e);
        ok(rc == 0 && n == strlen(m) && memcmp(out, m, n) == 0, "encode", u,
           strlen(u));
        ok(n <= SATCHEL_MUTF7_ENCODED_MAX(strlen(u)), "encode bound", u,
           strlen(u));
        ok(satchel_utf8_valid(u, strlen(u)), "utf8 valid", u, strlen(u));
        {
            /* The same form a window at a time, every window size. */
            size_t w;
            for (w = 1; w <= 9; w++) {
                char whole[256];
                size_t got = 0, have = 0;
                uint64_t total = 0, off = 0;
                do {
                    rc = satchel_mutf7_encode_window(u, strlen(u), off, whole + have, w, &got,
                                                     &total);
                    have += got;
                    off += got;
                } while (rc == 0 && got > 0 && off < total && have + w < sizeof whole);
                ok(rc == 0 && total == strlen(m) && have == strlen(m) &&
                       memcmp(whole, m, have) == 0,
                   "encode by windows", u, strlen(u));
            }
        }
    }
}

static void test_bad(void)
{
    size_t i;
    char out[64];
    size_t n = 99;
    satchel_mutf7_error e;
    for (i = 0; i < N_ELEM(bad_mutf7); i++) {
        const char *m = bad_mutf7[i].in;
        int rc;
        e.at = 999;
        e.why = NULL;
        rc = satchel_mutf7_decode(m, strlen(m), out, sizeof out, &n, &e);
        ok(rc == SATCHEL_E_INVAL && out[0] == '\0' && n == 0, "bad accepted", m,
           strlen(m));
        ok(e.at == bad_mutf7[i].at, "bad offset", m, strlen(m));
        ok(e.why && strstr(e.why, bad_mutf7[i].why) != NULL, "bad reason", m,
           strlen(m));
        if (e.at != bad_mutf7[i].at || !e.why || !strstr(e.why, bad_mutf7[i].why))
            printf("      got at=%zu why=%s\n", e.at, e.why ? e.why : "(none)");
        ok(!satchel_mutf7_valid(m, strlen(m)), "bad valid", m, strlen(m));
    }
    for (i = 0; i < N_ELEM(bad_utf8); i++) {
        const char *u = bad_utf8[i].in;
        int rc;
        e.at = 999;
        rc = satchel_mutf7_encode(u, bad_utf8[i].len, out, sizeof out, &n, &e);
        ok(rc == SATCHEL_E_INVAL && out[0] == '\0' && n == 0 &&
               e.at == bad_utf8[i].at && e.why != NULL,
           "bad utf8 accepted", u, bad_utf8[i].len);
        ok(!satchel_utf8_valid(u, bad_utf8[i].len), "bad utf8 valid", u,
           bad_utf8[i].len);
    }
}

/* Too little room is SATCHEL_E_RANGE with an empty output, at every cap. */
static void test_range(void)
{
    const char *m = "Donn&AOk-es/&AMk-t&AOk-", *u = "Donn\xc3\xa9" "es/\xc3\x89t\xc3\xa9";
    char out[64];
    size_t cap, n;
    for (cap = 0; cap <= strlen(m); cap++) {
        int rc = satchel_mutf7_encode(u, strlen(u), cap ? out : NULL, cap, &n, NULL);
        ok(rc == SATCHEL_E_RANGE && (cap == 0 || out[0] == '\0'), "encode range",
           u, strlen(u));
    }
    for (cap = 0; cap <= strlen(u); cap++) {
        int rc = satchel_mutf7_decode(m, strlen(m), cap ? out : NULL, cap, &n, NULL);
        ok(rc == SATCHEL_E_RANGE && (cap == 0 || out[0] == '\0'), "decode range",
           m, strlen(m));
    }
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* An independent reference for one non-ASCII code point: RFC 4648 base64 of
 * its UTF-16BE form, '/' as ',', '=' dropped, between '&' and '-'. */
static size_t ref_encode(uint32_t cp, char *o)
{
    static const char std[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char b[4];
    size_t nb = 0, i, n = 0;
    if (cp >= 0x10000) {
        uint32_t hi = 0xd800 + ((cp - 0x10000) >> 10),
                 lo = 0xdc00 + ((cp - 0x10000) & 0x3ff);
        b[nb++] = (unsigned char)(hi >> 8);
        b[nb++] = (unsigned char)hi;
        b[nb++] = (unsigned char)(lo >> 8);
        b[nb++] = (unsigned char)lo;
    } else {
        b[nb++] = (unsigned char)(cp >> 8);
        b[nb++] = (unsigned char)cp;
    }
    o[n++] = '&';
    for (i = 0; i < nb; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < nb ? (uint32_t)b[i + 1] << 8 : 0) |
                     (i + 2 < nb ? b[i + 2] : 0);
        size_t chars = i + 2 < nb ? 4 : i + 1 < nb ? 3 : 2, k;
        for (k = 0; k < chars; k++) {
            char c = std[(v >> (18 - 6 * k)) & 0x3f];
            o[n++] = c == '/' ? ',' : c;
        }
    }
    o[n++] = '-';
    return n;
}

/* Every Unicode scalar value from U+0001 to U+10FFFF, alone and between
 * ASCII letters: encode matches the reference, decode gives it back. */
static void test_every_code_point(void)
{
    uint32_t cp;
    unsigned long bad = 0, n_cp = 0;
    for (cp = 1; cp <= 0x10ffff; cp++) {
        char u[8], ref[16], m[32], back[16];
        size_t ul, rl, ml, bl;
        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        n_cp++;
        ul = put_utf8(u, cp);
        if (cp >= 0x20 && cp <= 0x7e) {
            if (cp == '&') {
                memcpy(ref, "&-", 2);
                rl = 2;
            } else {
                ref[0] = (char)cp;
                rl = 1;
            }
        } else {
            rl = ref_encode(cp, ref);
        }
        if (satchel_mutf7_encode(u, ul, m, sizeof m, &ml, NULL) != 0 || ml != rl ||
            memcmp(m, ref, rl) != 0 ||
            satchel_mutf7_decode(ref, rl, back, sizeof back, &bl, NULL) != 0 ||
            bl != ul || memcmp(back, u, ul) != 0) {
            if (bad++ < 10)
                printf("FAIL: code point U+%04X\n", (unsigned)cp);
        }
    }
    ok(bad == 0, "every code point", "", 0);
    printf("test_mutf7: %lu code points checked against the reference, %lu bad\n",
           n_cp, bad);
}

/* Random names mixing every class (ASCII, '&', controls, 2-, 3- and 4-byte
 * UTF-8) round-trip, and encode(decode(x)) is x for what encode made. */
static void test_random(unsigned seed)
{
    static const uint32_t lo[] = {0x20, '&', 0x01, 0x80, 0x800, 0xe000, 0x10000};
    static const uint32_t hi[] = {0x7e, '&', 0x1f, 0x7ff, 0xd7ff, 0xffff, 0x10ffff};
    unsigned long i, bad = 0;
    srand(seed);
    for (i = 0; i < 20000; i++) {
        char u[200], m[SATCHEL_MUTF7_ENCODED_MAX(200) + 1], back[201], m2[sizeof m];
        size_t ul = 0, ml, bl, m2l, j;
        int len = rand() % 12;
        while (len-- > 0) {
            int c = rand() % (int)N_ELEM(lo);
            uint32_t cp = lo[c] + (uint32_t)rand() % (hi[c] - lo[c] + 1);
            ul += put_utf8(u + ul, cp);
        }
        if (satchel_mutf7_encode(u, ul, m, sizeof m, &ml, NULL) != 0 ||
            ml > SATCHEL_MUTF7_ENCODED_MAX(ul) ||
            satchel_mutf7_decode(m, ml, back, sizeof back, &bl, NULL) != 0 ||
            bl != ul || memcmp(back, u, ul) != 0 ||
            satchel_mutf7_encode(back, bl, m2, sizeof m2, &m2l, NULL) != 0 ||
            m2l != ml || memcmp(m, m2, ml) != 0) {
            if (bad++ < 10) {
                printf("FAIL: random round trip ");
                check_show(u, ul);
                putchar('\n');
            }
        }
        for (j = 0; j < ml; j++)
            if ((unsigned char)m[j] < 0x20 || (unsigned char)m[j] > 0x7e)
                bad++;
    }
    ok(bad == 0, "random round trips", "", 0);
}

int main(void)
{
    const char *env = getenv("SATCHEL_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    printf("test_mutf7: seed %u (SATCHEL_SEED=%u repeats it)\n", seed, seed);
    test_pairs();
    test_bad();
    test_range();
    test_every_code_point();
    test_random(seed);
    return check_report("test_mutf7");
}
