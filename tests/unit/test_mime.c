/* Unit tests for core/mime_*.c: table-driven, no framework.
 * Prints one line per failed case, then "test_mime: N passed, M failed". */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../fuzz/fuzz_common.h" /* fz_utf8_valid: the independent UTF-8 oracle */
#include "check.h"
#include "satchel/mime.h"

#define FFFD "\xEF\xBF\xBD"
#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

static bool check(bool ok, const char *fmt, ...)
{
    if (ok) {
        passed++;
        return true;
    }
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    failed++;
    return false;
}

/* Compares a (rc, out) result with the expectation; prints both on mismatch. */
static void expect_str(const char *what, const char *in, size_t inlen, int rc,
                       const char *out, int erc, const char *exp)
{
    size_t elen = strlen(exp);
    bool ok = rc == erc && (erc < 0 && erc != SATCHEL_E_RANGE
                                ? out[0] == '\0'
                                : strlen(out) == elen && memcmp(out, exp, elen) == 0);
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL: %s(", what);
    check_show(in, inlen);
    printf(") rc=%d want %d out=", rc, erc);
    check_show(out, strlen(out));
    printf(" want ");
    check_show(exp, elen);
    putchar('\n');
}

/* Largest prefix of full (a UTF-8 string) that ends on a character
 * boundary and fits in cap bytes with its NUL. */
static size_t boundary_prefix(const char *full, size_t flen, size_t cap)
{
    size_t b = cap ? cap - 1 : 0;
    if (b > flen)
        b = flen;
    while (b > 0 && b < flen && ((unsigned char)full[b] & 0xC0) == 0x80)
        b--;
    return b;
}

static size_t bounded_len(const char *s, size_t cap)
{
    size_t n = 0;
    while (n < cap && s[n])
        n++;
    return n;
}

typedef int (*str_fn)(const char *in, size_t len, char *out, size_t cap);

/* A string function's input and its whole output. */
struct str_case {
    const char *in, *out;
};

static void expect_cases(const char *what, str_fn fn, const struct str_case *v, size_t n)
{
    char out[512];
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i].in);
        int rc = fn(v[i].in, len, out, sizeof out);
        expect_str(what, v[i].in, len, rc, out, (int)strlen(v[i].out), v[i].out);
    }
}

/* Runs fn with every cap from 0 to past the full length.  exact: the cut
 * must be the largest boundary prefix; otherwise any valid prefix will do
 * (format_from trims a cut display name). */
static void truncation_sweep(const char *what, str_fn fn, const char *in,
                             bool exact)
{
    char full[512], out[512];
    size_t inlen = strlen(in);
    int frc = fn(in, inlen, full, sizeof full);
    size_t flen;
    bool all = true;

    if (!check(frc >= 0, "%s sweep: full decode failed rc=%d", what, frc))
        return;
    flen = (size_t)frc;
    for (size_t cap = 0; cap <= flen + 2; cap++) {
        int rc;
        memset(out, 'Z', sizeof out);
        rc = fn(in, inlen, out, cap);
        if (cap > flen) {
            all &= check(rc == frc && memcmp(out, full, flen + 1) == 0,
                         "%s sweep cap=%zu: rc=%d want %d", what, cap, rc, frc);
            continue;
        }
        all &= check(rc == SATCHEL_E_RANGE, "%s sweep cap=%zu: rc=%d want RANGE",
                     what, cap, rc);
        if (cap == 0) {
            all &= check(out[0] == 'Z', "%s sweep cap=0 wrote", what);
            continue;
        }
        size_t n = bounded_len(out, cap);
        all &= check(n < cap, "%s sweep cap=%zu: not NUL-terminated", what, cap);
        if (n >= cap)
            continue;
        all &= check(out[cap] == 'Z' || cap == sizeof out,
                     "%s sweep cap=%zu: wrote past cap", what, cap);
        all &= check(memcmp(out, full, n) == 0 && fz_utf8_valid((const uint8_t *)out, n),
                     "%s sweep cap=%zu: not a valid prefix", what, cap);
        if (exact)
            all &= check(n == boundary_prefix(full, flen, cap),
                         "%s sweep cap=%zu: len %zu want %zu", what, cap, n,
                         boundary_prefix(full, flen, cap));
    }
    (void)all;
}

/* ---- decode_header ----------------------------------------------------- */

static const struct str_case hdr_vec[] = {
    /* RFC 2047 section 8 */
    {"=?ISO-8859-1?Q?a?=", "a"},
    {"=?ISO-8859-1?Q?a?= b", "a b"},
    {"a =?ISO-8859-1?Q?b?=", "a b"},
    {"=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab"},
    {"=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=", "ab"},
    {"=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=", "ab"},
    {"=?ISO-8859-1?Q?a_b?=", "a b"},
    {"=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=", "a =?ISO-8859-2?Q?_b?="},
    {"(=?ISO-8859-1?Q?a?=)", "(a)"},
    {"(=?ISO-8859-1?Q?a?= b)", "(a b)"},
    {"=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>",
     "Keith Moore <moore@cs.utk.edu>"},
    {"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>",
     "Keld J\xC3\xB8rn Simonsen <keld@dkuug.dk>"},
    {"=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
     "Andr\xC3\xA9 Pirard <PIRARD@vm1.ulg.ac.be>"},
    {"=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
     " =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
     "If you can read this yo =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?="},
    {"=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
     " =?ISO-8859-1?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
     "If you can read this you understand the example."},
    /* B and Q, case, RFC 2231 language */
    {"=?utf-8?B?w6lsw6h2ZQ==?=", "\xC3\xA9l\xC3\xA8ve"},
    {"=?UTF-8?b?w6lsw6h2ZQ?=", "\xC3\xA9l\xC3\xA8ve"},
    {"=?utf-8?q?=c3=a9?=", "\xC3\xA9"},
    {"=?utf-8*en?Q?caf=C3=A9?=", "caf\xC3\xA9"},
    {"=?UTF-8*en-US?B?Y2Fmw6k=?=", "caf\xC3\xA9"},
    {"=?utf-8?q?" "?=x", "x"}, /* split: "??=" is a trigraph */
    {"=?utf-8?q?a=ZZ=4?=", "a=ZZ=4"},
    {"foo=?utf-8?q?bar?=baz", "foobarbaz"},
    /* adjacent words: one UTF-8 character split across them */
    {"=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "\xC3\xA9"},
    {"=?utf-8?b?4oI=?=\r\n =?utf-8?b?rA==?=", "\xE2\x82\xAC"},
    {"=?utf-8?q?=C3?= =?iso-8859-1?q?=E9?=", FFFD "\xC3\xA9"},
    {"=?utf-8?q?=C3?= x", FFFD " x"},
    {"=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"},
    {"=?utf-8?q?a?= =?bogus?q?b?= =?utf-8?q?c?=", "a =?bogus?q?b?= c"},
    /* charsets */
    {"=?windows-1252?q?=80=9F?=", "\xE2\x82\xAC\xC5\xB8"},
    {"=?cp1252?q?=81x?=", FFFD "x"},
    {"=?latin1?q?=E9?=", "\xC3\xA9"},
    {"=?ISO_8859-1?Q?=80?=", "\xE2\x82\xAC"},
    {"=?iso-8859-1?q?=A4?=", "\xC2\xA4"},
    {"=?iso-8859-15?q?=A4=BE?=", "\xE2\x82\xAC\xC5\xB8"},
    {"=?latin9?q?=9B?=", FFFD},
    {"=?us-ascii?q?=E9?=", "\xC3\xA9"},
    {"=?x-unknown?q?abc?=", "=?x-unknown?q?abc?="},
    /* invalid UTF-8 inside encoded words */
    {"=?utf-8?q?a=FFb?=", "a" FFFD "b"},
    {"=?utf-8?q?=C0=AF?=", FFFD FFFD},
    {"=?utf-8?q?=ED=A0=80?=", FFFD FFFD FFFD},
    {"=?utf-8?q?=F4=90=80=80?=", FFFD FFFD FFFD FFFD},
    {"=?utf-8?q?a=E2=82?=", "a" FFFD},
    {"=?utf-8?q?=F0=9F=98=80?=", "\xF0\x9F\x98\x80"},
    /* raw 8-bit */
    {"Caf\xC3\xA9", "Caf\xC3\xA9"},
    {"Caf\xE9 \x80", "Caf\xC3\xA9 \xE2\x82\xAC"},
    {"\xC3\xA9 \xE9", "\xC3\x83\xC2\xA9 \xC3\xA9"},
    {"=?utf-8?q?=C3=A9?= \xE9", "\xC3\xA9 \xC3\xA9"},
    /* malformed encoded words stay */
    {"=?utf-8?x?abc?=", "=?utf-8?x?abc?="},
    {"=?utf-8?q?abc", "=?utf-8?q?abc"},
    {"=?utf-8?q?a b?=", "=?utf-8?q?a b?="},
    {"=??q?a?=", "=??q?a?="},
    {"=?", "=?"},
    {"=?=?=?utf-8?q?x?=", "=?=?x"},
    /* folding and controls */
    {"Hello\r\n World", "Hello World"},
    {"a\n\tb", "a b"},
    {"a\x01" "b\tc\x7F", "ab c"},
    {"=?utf-8?q?x=C2=9By?=", "xy"},
    {"=?utf-8?q?=0D=0Aevil:_x?=", "evil: x"},
    {"", ""},
};

static void test_decode_header(void)
{
    char out[512];
    expect_cases("decode_header", satchel_mime_decode_header, hdr_vec, N_ELEM(hdr_vec));
    /* embedded NUL and reading exactly len bytes */
    {
        static const char in[] = {'a', 0, 'b', '=', '?'};
        int rc = satchel_mime_decode_header(in, 3, out, sizeof out);
        expect_str("decode_header", in, 3, rc, out, 2, "ab");
        rc = satchel_mime_decode_header(in, sizeof in, out, sizeof out);
        expect_str("decode_header", in, sizeof in, rc, out, 4, "ab=?");
    }
    {
        /* a 4-byte input that must not be read as the word it starts */
        static const char in[] = "=?utf-8?q?x?=";
        int rc = satchel_mime_decode_header(in, 12, out, sizeof out);
        expect_str("decode_header", in, 12, rc, out, 12, "=?utf-8?q?x?");
    }
    check(satchel_mime_decode_header(NULL, 1, out, sizeof out) == SATCHEL_E_INVAL,
          "decode_header NULL input");
    check(satchel_mime_decode_header(NULL, 0, out, sizeof out) == 0 && !out[0],
          "decode_header NULL empty");
    check(satchel_mime_decode_header("a", 1, NULL, 4) == SATCHEL_E_INVAL,
          "decode_header NULL out");

    truncation_sweep("decode_header", satchel_mime_decode_header,
                     "=?utf-8?q?=F0=9F=98=80a=C3=A9?= =?utf-8?q?=E2=82=AC?= x "
                     "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", true);
    truncation_sweep("decode_header", satchel_mime_decode_header,
                     "=?windows-1252?q?=80=80=80_=E9?=\r\n =?bad?q?x?=", true);
    truncation_sweep("decode_header", satchel_mime_decode_header,
                     "Caf\xE9 \x80\x80", true);
}

/* ---- to_utf8 ----------------------------------------------------------- */

static const struct {
    const char *cs, *in;
    size_t len;
    int rc;
    const char *out;
} cvt_vec[] = {
    {"UTF-8", "abc", 3, 0, "abc"},
    {"utf8", "\xC3\xA9\xE2\x82\xAC", 5, 0, "\xC3\xA9\xE2\x82\xAC"},
    {"utf-8", "\xFF\xFE", 2, 0, FFFD FFFD},
    {"utf-8", "\xC3", 1, 0, FFFD},
    {"utf-8", "\xE2\x82", 2, 0, FFFD},
    {"utf-8", "\xE2\x82x", 3, 0, FFFD "x"},
    {"utf-8", "\xC0\x80", 2, 0, FFFD FFFD},
    {"utf-8", "\xED\xBF\xBF", 3, 0, FFFD FFFD FFFD},
    {"utf-8", "\xF8\x88\x80\x80\x80", 5, 0, FFFD FFFD FFFD FFFD FFFD},
    {"utf-8", "a\0b", 3, 0, "a"}, /* NUL kept; compared as C string */
    {"us-ascii", "plain", 5, 0, "plain"},
    {"US-ASCII", "\x80", 1, 0, "\xE2\x82\xAC"},
    {"iso-8859-1", "\xE9\xFF", 2, 0, "\xC3\xA9\xC3\xBF"},
    {"ISO_8859-1:1987", "\xA4", 1, 0, "\xC2\xA4"},
    {"Latin1", "\x80", 1, 0, "\xE2\x82\xAC"},
    {"l1", "\xDF", 1, 0, "\xC3\x9F"},
    {"windows-1252", "\x80\x8A\x93\x94\x99", 5, 0,
     "\xE2\x82\xAC\xC5\xA0\xE2\x80\x9C\xE2\x80\x9D\xE2\x84\xA2"},
    {"CP1252", "\x81\x8D\x8F\x90\x9D", 5, 0, FFFD FFFD FFFD FFFD FFFD},
    {"iso-8859-15", "\xA4\xA6\xA8\xB4\xB8\xBC\xBD\xBE\xE9", 9, 0,
     "\xE2\x82\xAC\xC5\xA0\xC5\xA1\xC5\xBD\xC5\xBE\xC5\x92\xC5\x93\xC5\xB8\xC3\xA9"},
    {"latin-9", "\x80", 1, 0, FFFD},
    {"koi8-r", "abc", 3, SATCHEL_E_NOTSUP, ""},
    {"", "abc", 3, SATCHEL_E_NOTSUP, ""},
    {"utf-8 ", "abc", 3, SATCHEL_E_NOTSUP, ""},
    {"utf-8", "", 0, 0, ""},
};

static int cvt_utf8_fn(const char *in, size_t len, char *out, size_t cap)
{
    size_t n = 999;
    int rc = satchel_mime_to_utf8("utf-8", 5, (const uint8_t *)in, len, out, cap, &n);
    if (rc == 0)
        return (int)n;
    if (rc == SATCHEL_E_RANGE && cap && n != strlen(out))
        return -100;
    return rc;
}

static int cvt_1252_fn(const char *in, size_t len, char *out, size_t cap)
{
    size_t n = 999;
    int rc = satchel_mime_to_utf8("cp1252", 6, (const uint8_t *)in, len, out, cap, &n);
    return rc == 0 ? (int)n : rc;
}

static void test_to_utf8(void)
{
    char out[256];
    for (size_t i = 0; i < N_ELEM(cvt_vec); i++) {
        size_t n = 12345;
        int rc = satchel_mime_to_utf8(cvt_vec[i].cs, strlen(cvt_vec[i].cs),
                                      (const uint8_t *)cvt_vec[i].in,
                                      cvt_vec[i].len, out, sizeof out, &n);
        expect_str("to_utf8", cvt_vec[i].in, cvt_vec[i].len, rc, out,
                   cvt_vec[i].rc, cvt_vec[i].out);
        if (i == 9)
            check(rc == 0 && n == 3 && memcmp(out, "a\0b", 4) == 0,
                  "to_utf8 embedded NUL length");
        else if (rc == 0)
            check(n == strlen(out), "to_utf8 out_len %zu for vector %zu", n, i);
        else if (rc == SATCHEL_E_NOTSUP)
            check(n == 0, "to_utf8 NOTSUP out_len");
    }
    check(satchel_mime_charset_known("UTF-8", 5), "charset_known UTF-8");
    check(satchel_mime_charset_known("Windows-1252", 12), "charset_known 1252");
    check(satchel_mime_charset_known("utf-8xyz", 5), "charset_known reads len only");
    check(!satchel_mime_charset_known("utf-8", 4), "charset_known prefix");
    check(!satchel_mime_charset_known("iso-8859-2", 10), "charset_known 8859-2");
    check(!satchel_mime_charset_known(NULL, 0), "charset_known NULL");
    check(satchel_mime_to_utf8("utf-8", 5, NULL, 3, out, sizeof out, NULL) ==
              SATCHEL_E_INVAL, "to_utf8 NULL in");

    truncation_sweep("to_utf8", cvt_utf8_fn,
                     "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xFF" "b", true);
    truncation_sweep("to_utf8/1252", cvt_1252_fn, "\x80\xE9x\x99", true);

    {
        static const uint8_t t1[] = {'a', 0xE2, 0x82};
        static const uint8_t t2[] = {'a', 0xF0, 0x9F, 0x98};
        static const uint8_t t3[] = {'a', 0xE2, 0x82, 0xAC};
        static const uint8_t t4[] = {'a', 0xE2, 'x'};
        static const uint8_t t5[] = {0x82, 0x82, 0x82};
        static const uint8_t t6[] = {'a', 0xED, 0xA0};
        check(satchel_mime_utf8_tail(t1, 3) == 2, "utf8_tail E2 82");
        check(satchel_mime_utf8_tail(t2, 4) == 3, "utf8_tail F0 9F 98");
        check(satchel_mime_utf8_tail(t2, 2) == 1, "utf8_tail F0");
        check(satchel_mime_utf8_tail(t3, 4) == 0, "utf8_tail complete");
        check(satchel_mime_utf8_tail(t4, 3) == 0, "utf8_tail broken");
        check(satchel_mime_utf8_tail(t5, 3) == 0, "utf8_tail continuations");
        check(satchel_mime_utf8_tail(t6, 3) == 0, "utf8_tail surrogate");
        check(satchel_mime_utf8_tail(NULL, 0) == 0, "utf8_tail empty");
    }
}

/* ---- header_get -------------------------------------------------------- */

static const char blk_crlf[] =
    "Received: from a\r\n\tby b; Tue, 1 Jul 2003 10:52:37 +0200\r\n"
    "From: John Doe <jdoe@machine.example>\r\n"
    "Subject: Saying\r\n Hello\r\n  again  \r\n"
    "X-Empty:\r\n"
    "Comments :  obsolete spacing\r\n"
    "subject: second one\r\n"
    "X-Utf8: caf\xC3\xA9 \xE2\x82\xAC\r\n"
    "\r\n"
    "Body-Field: not a header\r\n";

static const char blk_lf[] =
    "From: a@b\n"
    "Subject: one\n two\n\tthree\n"
    "To: x@y\n"
    "\n"
    "Cc: body\n";

static const struct {
    const char *blk;
    size_t len; /* 0: whole block */
    const char *name;
    int rc; /* an error, or 0 for success (length = strlen(out)) */
    const char *out;
} get_vec[] = {
    {blk_crlf, 0, "Subject", 0, "Saying Hello  again"},
    {blk_crlf, 0, "SUBJECT", 0, "Saying Hello  again"},
    {blk_crlf, 0, "from", 0, "John Doe <jdoe@machine.example>"},
    {blk_crlf, 0, "Received", 0, "from a\tby b; Tue, 1 Jul 2003 10:52:37 +0200"},
    {blk_crlf, 0, "X-Empty", 0, ""},
    {blk_crlf, 0, "Comments", 0, "obsolete spacing"},
    {blk_crlf, 0, "X-Utf8", 0, "caf\xC3\xA9 \xE2\x82\xAC"},
    {blk_crlf, 0, "Body-Field", SATCHEL_E_NOTFOUND, ""},
    {blk_crlf, 0, "Subj", SATCHEL_E_NOTFOUND, ""},
    {blk_crlf, 0, "X", SATCHEL_E_NOTFOUND, ""},
    {blk_crlf, 0, "Hello", SATCHEL_E_NOTFOUND, ""},
    {blk_lf, 0, "subject", 0, "one two\tthree"},
    {blk_lf, 0, "To", 0, "x@y"},
    {blk_lf, 0, "Cc", SATCHEL_E_NOTFOUND, ""},
    /* block cut mid-value and mid-name */
    {blk_lf, 27, "Subject", 0, "one two"},
    {blk_lf, 25, "Subject", 0, "one t"},
    {blk_lf, 24, "Subject", 0, "one"},
    {blk_lf, 22, "Subject", 0, "one"},
    {blk_lf, 21, "Subject", 0, "on"},
    {blk_lf, 18, "Subject", 0, ""},
    {blk_lf, 17, "Subject", SATCHEL_E_NOTFOUND, ""},
    {blk_lf, 13, "Subject", SATCHEL_E_NOTFOUND, ""},
    {"Subject: x", 0, "Subject", 0, "x"},
    {"Subject:", 0, "Subject", 0, ""},
    {"\r\nSubject: x", 0, "Subject", SATCHEL_E_NOTFOUND, ""},
    {" Subject: x\nSubject: y", 0, "Subject", 0, "y"},
    {"Subject: a\r\n\r\n", 0, "Subject", 0, "a"},
};

static int get_subject_fn(const char *in, size_t len, char *out, size_t cap)
{
    return satchel_mime_header_get(in, len, "x-utf8", out, cap);
}

static void test_header_get(void)
{
    char out[256];
    for (size_t i = 0; i < N_ELEM(get_vec); i++) {
        size_t len = get_vec[i].len ? get_vec[i].len : strlen(get_vec[i].blk);
        int rc = satchel_mime_header_get(get_vec[i].blk, len, get_vec[i].name,
                                         out, sizeof out);
        expect_str("header_get", get_vec[i].name, strlen(get_vec[i].name), rc,
                   out, get_vec[i].rc ? get_vec[i].rc : (int)strlen(get_vec[i].out),
                   get_vec[i].out);
    }
    check(satchel_mime_header_get(blk_lf, sizeof blk_lf - 1, "", out, sizeof out) ==
              SATCHEL_E_INVAL, "header_get empty name");
    check(satchel_mime_header_get(blk_lf, sizeof blk_lf - 1, NULL, out, sizeof out) ==
              SATCHEL_E_INVAL, "header_get NULL name");
    truncation_sweep("header_get", get_subject_fn,
                     "X-Utf8: caf\xC3\xA9 \xE2\x82\xAC\xF0\x9F\x98\x80!\r\n", true);
}

/* ---- dates ------------------------------------------------------------- */

static const struct {
    const char *s;
    int rc;
    int64_t epoch;
    int tz;
    const char *rfc3339;
} date_vec[] = {
    /* RFC 5322 appendix A */
    {"Fri, 21 Nov 1997 09:55:06 -0600", 0, 880127706, -360,
     "1997-11-21T09:55:06-06:00"},
    {"Tue, 1 Jul 2003 10:52:37 +0200", 0, 1057049557, 120,
     "2003-07-01T10:52:37+02:00"},
    {"Thu, 13 Feb 1969 23:32:54 -0330", 0, -27723426, -210,
     "1969-02-13T23:32:54-03:30"},
    {"Thu,\r\n      13\r\n        Feb\r\n          1969\r\n      23:32\r\n"
     "               -0330 (Newfoundland Time)", 0, -27723480, -210,
     "1969-02-13T23:32:00-03:30"},
    {"21 Nov 97 09:55:06 GMT", 0, 880106106, 0, "1997-11-21T09:55:06+00:00"},
    {"Fri, 21 Nov 1997 09:55:06 -0600 (MDT)", 0, 880127706, -360, NULL},
    /* obsolete and sloppy forms */
    {"Sat, 1 Jan 2000 00:00 PST", 0, 946713600, -480,
     "2000-01-01T00:00:00-08:00"},
    {"1 Jan 2000 00:00:00 EDT", 0, 946699200, -240, NULL},
    {"1 Jan 2000 00:00:00 CST", 0, 946706400, -360, NULL},
    {"1 Jan 2000 00:00:00 UT", 0, 946684800, 0, NULL},
    {"1 Jan 2000 00:00:00 Z", 0, 946684800, 0, NULL},
    {"1 Jan 2000 00:00:00 CEST", 0, 946684800, 0, NULL},
    {"1 Jan 2000 00:00:00", 0, 946684800, 0, NULL},
    {"1 Jan 2000 00:00:00 +0100 (CET)", 0, 946681200, 60, NULL},
    {"1 Jan 2000 00:00:00 +0100 CET", 0, 946681200, 60, NULL},
    {"  Mon ,  29  feb  2000   12:00:00   +0000  ", 0, 951825600, 0, NULL},
    {"Monday, 28 February 2000 12:00:00 +0000", 0, 951739200, 0, NULL},
    {"(c) Mon, 29 Feb 2000 12:00:00 +0000", 0, 951825600, 0, NULL},
    {"29-Feb-2000 12:00:00 +0000", 0, 951825600, 0, NULL},
    {"Fri, 31 Dec 1999 23:59:59 +1400", 0, 946634399, 840,
     "1999-12-31T23:59:59+14:00"},
    {"1 Jan 2050 00:00:00 +0000", 0, 2524608000, 0, NULL},
    {"1 Jan 49 00:00:00 +0000", 0, 2493072000, 0, NULL},
    {"1 Jan 50 00:00:00 +0000", 0, -631152000, 0, NULL},
    {"1 Jan 105 00:00:00 +0000", 0, 1104537600, 0, NULL},
    {"31 Dec 1999 23:59:60 +0000", 0, 946684800, 0, NULL},
    {"1 Jan 1970 00:00:00 -0000", 0, 0, 0, "1970-01-01T00:00:00+00:00"},
    /* garbage */
    {"", SATCHEL_E_INVAL, 0, 0, NULL},
    {"hello", SATCHEL_E_INVAL, 0, 0, NULL},
    {"Fri, 21 Nov 1997", SATCHEL_E_INVAL, 0, 0, NULL},
    {"Fry, 21 Nov 1997 09:55:06 -0600", SATCHEL_E_INVAL, 0, 0, NULL},
    {"32 Jan 2000 00:00 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"0 Jan 2000 00:00 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"29 Feb 2001 00:00 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"29 Feb 1900 00:00 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Foo 2000 00:00 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 24:00 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 10:60 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 10:00:61 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 10:00 +0060", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 10:00 +060", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 10:00 +00000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 10:00 +0000 junk junk", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 10:00 +0000 7", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 20000 10:00 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 10 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 10:00 +0000 (unterminated", SATCHEL_E_INVAL, 0, 0, NULL},
    {"(unterminated 1 Jan 2000 10:00 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"999999999999 Jan 2000 10:00 +0000", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 10:00:", SATCHEL_E_INVAL, 0, 0, NULL},
    {"1 Jan 2000 10:00 +", SATCHEL_E_INVAL, 0, 0, NULL},
};

static const struct {
    const char *s;
    int rc;
    int64_t epoch;
    int tz;
} idate_vec[] = {
    {"17-Jul-1996 02:44:25 -0700", 0, 837596665, -420},
    {"\"17-Jul-1996 02:44:25 -0700\"", 0, 837596665, -420},
    {" 7-Jul-1996 02:44:25 -0700", 0, 836732665, -420},
    {"7-jul-1996 02:44:25 -0700", 0, 836732665, -420},
    {"01-Jan-1970 00:00:00 +0000", 0, 0, 0},
    {"31-Dec-1969 23:59:59 +0000", 0, -1, 0},
    {"01-Jan-2000 05:30:00 +0530", 0, 946684800, 330},
    {"17-Jul-1996 02:44:25", SATCHEL_E_INVAL, 0, 0},
    {"17-Jul-1996 02:44:25 -0700 ", SATCHEL_E_INVAL, 0, 0},
    {"17-Jul-96 02:44:25 -0700", SATCHEL_E_INVAL, 0, 0},
    {"17 Jul 1996 02:44:25 -0700", SATCHEL_E_INVAL, 0, 0},
    {"17-Jux-1996 02:44:25 -0700", SATCHEL_E_INVAL, 0, 0},
    {"30-Feb-1996 02:44:25 -0700", SATCHEL_E_INVAL, 0, 0},
    {"17-Jul-1996 2:44:25 -0700", SATCHEL_E_INVAL, 0, 0},
    {"  7-Jul-1996 02:44:25 -0700", SATCHEL_E_INVAL, 0, 0},
    {"\"", SATCHEL_E_INVAL, 0, 0},
    {"", SATCHEL_E_INVAL, 0, 0},
    {"17-Jul-1996 02:44:25 -07", SATCHEL_E_INVAL, 0, 0},
};

static const struct {
    int64_t epoch;
    int tz;
    int rc;
    const char *out;
} fmt_vec[] = {
    {837596665, -420, 25, "1996-07-17T02:44:25-07:00"},
    {0, 0, 25, "1970-01-01T00:00:00+00:00"},
    {-1, 0, 25, "1969-12-31T23:59:59+00:00"},
    {946684799, 60, 25, "2000-01-01T00:59:59+01:00"},
    {946684800, -60, 25, "1999-12-31T23:00:00-01:00"},
    {951782400, 0, 25, "2000-02-29T00:00:00+00:00"},
    {0, -30, 25, "1969-12-31T23:30:00-00:30"},
    {0, 5999, 25, "1970-01-05T03:59:00+99:59"},
    {253402300799, 0, 25, "9999-12-31T23:59:59+00:00"},
    {-62167219200, 0, 25, "0000-01-01T00:00:00+00:00"},
    {253402300800, 0, SATCHEL_E_RANGE, ""},
    {-62167219201, 0, SATCHEL_E_RANGE, ""},
    {253402300799, 1, SATCHEL_E_RANGE, ""},
    {INT64_MAX, 0, SATCHEL_E_RANGE, ""},
    {INT64_MIN, -5999, SATCHEL_E_RANGE, ""},
    {0, 6000, SATCHEL_E_RANGE, ""},
    {0, -6000, SATCHEL_E_RANGE, ""},
};

static void test_dates(void)
{
    char out[64];
    static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

    for (size_t i = 0; i < N_ELEM(date_vec); i++) {
        int64_t e = 12345;
        int tz = 777;
        int rc = satchel_mime_parse_date(date_vec[i].s, strlen(date_vec[i].s), &e, &tz);
        if (date_vec[i].rc)
            check(rc == date_vec[i].rc && e == 12345 && tz == 777,
                  "parse_date(\"%s\") rc=%d want %d", date_vec[i].s, rc,
                  date_vec[i].rc);
        else
            check(rc == 0 && e == date_vec[i].epoch && tz == date_vec[i].tz,
                  "parse_date(\"%s\") rc=%d epoch=%lld tz=%d want %lld %d",
                  date_vec[i].s, rc, (long long)e, tz,
                  (long long)date_vec[i].epoch, date_vec[i].tz);
        if (rc == 0 && date_vec[i].rfc3339) {
            rc = satchel_mime_format_rfc3339(e, tz, out, sizeof out);
            expect_str("parse+format", date_vec[i].s, strlen(date_vec[i].s),
                       rc, out, 25, date_vec[i].rfc3339);
        }
    }
    /* only the first len bytes are read */
    {
        int64_t e;
        int tz;
        check(satchel_mime_parse_date("1 Jan 2000 00:00 +0100X", 22, &e, &tz) == 0 &&
                  tz == 60, "parse_date bounded by len");
        check(satchel_mime_parse_date("1 Jan 2000 00:00 +01009", 22, &e, &tz) == 0,
              "parse_date ignores byte past len");
        check(satchel_mime_parse_date(NULL, 0, &e, &tz) == SATCHEL_E_INVAL,
              "parse_date NULL");
        check(satchel_mime_parse_date("1 Jan 2000 00:00 +0100", 22, NULL, NULL) == 0,
              "parse_date NULL outputs");
    }
    for (size_t i = 0; i < N_ELEM(idate_vec); i++) {
        int64_t e = 12345;
        int tz = 777;
        int rc = satchel_mime_parse_internaldate(idate_vec[i].s,
                                                 strlen(idate_vec[i].s), &e, &tz);
        if (idate_vec[i].rc)
            check(rc == idate_vec[i].rc, "parse_internaldate(\"%s\") rc=%d",
                  idate_vec[i].s, rc);
        else
            check(rc == 0 && e == idate_vec[i].epoch && tz == idate_vec[i].tz,
                  "parse_internaldate(\"%s\") rc=%d epoch=%lld tz=%d",
                  idate_vec[i].s, rc, (long long)e, tz);
    }
    for (size_t i = 0; i < N_ELEM(fmt_vec); i++) {
        memset(out, 'Z', sizeof out);
        int rc = satchel_mime_format_rfc3339(fmt_vec[i].epoch, fmt_vec[i].tz, out,
                                             sizeof out);
        expect_str("format_rfc3339", "", 0, rc, out, fmt_vec[i].rc, fmt_vec[i].out);
    }
    memset(out, 'Z', sizeof out);
    check(satchel_mime_format_rfc3339(0, 0, out, 25) == SATCHEL_E_RANGE && !out[0],
          "format_rfc3339 cap 25");
    check(satchel_mime_format_rfc3339(0, 0, out, 26) == 25 && out[25] == 0,
          "format_rfc3339 cap 26");
    check(satchel_mime_format_rfc3339(0, 0, NULL, 0) == SATCHEL_E_RANGE,
          "format_rfc3339 cap 0");

    /* Round trips: format, rebuild as RFC 5322 and IMAP text, parse back. */
    static const int tzs[] = {-720, -570, -210, -1, 0, 1, 330, 345, 840};
    unsigned bad = 0, n = 0;
    for (int64_t e = -2208988800; e < 4102444800; e += 86400 * 7 + 3671) {
        for (size_t k = 0; k < N_ELEM(tzs); k++) {
            char a[32], b[64], c[64];
            int64_t e2 = 0, e3 = 0;
            int tz2 = 0, tz3 = 0, y, mo, d, h, mi, s, oh, om;
            char sign;
            n++;
            if (satchel_mime_format_rfc3339(e, tzs[k], a, sizeof a) != 25 ||
                sscanf(a, "%4d-%2d-%2dT%2d:%2d:%2d%c%2d:%2d", &y, &mo, &d, &h, &mi,
                       &s, &sign, &oh, &om) != 9) {
                bad++;
                continue;
            }
            snprintf(b, sizeof b, "%d %s %04d %02d:%02d:%02d %c%02d%02d", d,
                     mon[mo - 1], y, h, mi, s, sign, oh, om);
            snprintf(c, sizeof c, "%2d-%s-%04d %02d:%02d:%02d %c%02d%02d", d,
                     mon[mo - 1], y, h, mi, s, sign, oh, om);
            if (satchel_mime_parse_date(b, strlen(b), &e2, &tz2) != 0 || e2 != e ||
                tz2 != tzs[k] ||
                satchel_mime_parse_internaldate(c, strlen(c), &e3, &tz3) != 0 ||
                e3 != e || tz3 != tzs[k]) {
                if (bad++ < 5)
                    printf("FAIL: round trip %lld %d: %s / %s / %s\n", (long long)e,
                           tzs[k], a, b, c);
            }
        }
    }
    check(bad == 0, "date round trips: %u of %u failed", bad, n);
}

/* ---- format_from ------------------------------------------------------- */

static const struct str_case from_vec[] = {
    {"John Doe <jdoe@machine.example>", "John Doe <jdoe@machine.example>"},
    {"\"Joe Q. Public\" <john.q.public@example.com>",
     "Joe Q. Public <john.q.public@example.com>"},
    {"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
     "Pete <pete@silly.test>"},
    {"jdoe@example.org", "jdoe@example.org"},
    {"  jdoe@example.org  ", "jdoe@example.org"},
    {"jdoe@example.org (John Doe)", "John Doe <jdoe@example.org>"},
    {"jdoe@example.org ( )", "jdoe@example.org"},
    {"<jdoe@example.org>", "jdoe@example.org"},
    {"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>",
     "Keld J\xC3\xB8rn Simonsen <keld@dkuug.dk>"},
    {"=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>",
     "Keith Moore <moore@cs.utk.edu>"},
    {"=?utf-8?q?J=C3=B6rg?= =?utf-8?q?_M=C3=BCller?= <j@x.de>",
     "J\xC3\xB6rg M\xC3\xBCller <j@x.de>"},
    {"\"=?utf-8?q?J=C3=B6rg?=\" <j@x.de>", "J\xC3\xB6rg <j@x.de>"},
    {"=?utf-8?q?_Bob_?= <b@x>", "Bob <b@x>"},
    {"A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
     "Ed Jones <c@a.test>"},
    {"A Group: joe@where.test, John <jdoe@one.test>;", "joe@where.test"},
    {"Undisclosed recipients:;", "Undisclosed recipients"},
    {", , John <j@x>", "John <j@x>"},
    {"Mary Smith <mary@x.test>, jdoe@example.org", "Mary Smith <mary@x.test>"},
    {"<@route.a,@route.b:user@c.test>", "user@c.test"},
    {"\"Doe, John\" <j@x>", "Doe, John <j@x>"},
    {"  John   Smith   <js@x>", "John Smith <js@x>"},
    {"\"\\\"Q\\\" Person\" <q@x>", "\"Q\" Person <q@x>"},
    {"\"john doe\"@example.com", "\"john doe\"@example.com"},
    {"J\xC3\xB6rg <j@x>", "J\xC3\xB6rg <j@x>"},
    {"J\xF6rg <j@x>", "J\xC3\xB6rg <j@x>"},
    {"root", "root"},
    {"=?utf-8?q?Just_a_name?=", "Just a name"},
    {"John <john@x", "John <john@x>"},
    {"\"Unterminated <u@x>", "Unterminated <u@x>"},
    {"Mallory\x01\x1B[31m <m@x>", "Mallory[31m <m@x>"},
    {"Folded\r\n Name\r\n <f@x>", "Folded Name <f@x>"},
    {"\"=?bogus?q?x?=\" <b@x>", "=?bogus?q?x?= <b@x>"},
    {"<>", "<>"},
    {"(only a comment)", "(only a comment)"},
    {"", ""},
};

static int from_fn(const char *in, size_t len, char *out, size_t cap)
{
    return satchel_mime_format_from(in, len, out, cap);
}

static void test_format_from(void)
{
    char out[256];
    expect_cases("format_from", from_fn, from_vec, N_ELEM(from_vec));
    check(satchel_mime_format_from(NULL, 2, out, sizeof out) == SATCHEL_E_INVAL,
          "format_from NULL");
    truncation_sweep("format_from", from_fn,
                     "=?utf-8?q?J=C3=B6rg_=E2=82=AC?= <j\xC3\xB6rg@x.de>", false);
    truncation_sweep("format_from", from_fn, "j@x (\xE2\x82\xAC Name)", false);
}

/* ---- base64 / QP -------------------------------------------------------- */

typedef struct {
    bool qp;
    satchel_mime_b64 b;
    satchel_mime_qp q;
} dec;

static void dec_init(dec *d, bool qp)
{
    d->qp = qp;
    satchel_mime_b64_init(&d->b);
    satchel_mime_qp_init(&d->q);
}

static size_t dec_run(dec *d, const uint8_t *in, size_t len, size_t *used,
                      uint8_t *out, size_t cap)
{
    return d->qp ? satchel_mime_qp_decode(&d->q, in, len, used, out, cap)
                 : satchel_mime_b64_decode(&d->b, in, len, used, out, cap);
}

static size_t dec_fin(dec *d, uint8_t *out, size_t cap)
{
    return d->qp ? satchel_mime_qp_finish(&d->q, out, cap)
                 : satchel_mime_b64_finish(&d->b, out, cap);
}

/* Decodes in, cut into chunks at `split` (if < len) or every `chunk`
 * bytes, with output windows of `cap` bytes.  Returns the total length
 * or (size_t)-1 if the contract was broken. */
static size_t dec_all(bool qp, const uint8_t *in, size_t len, size_t split,
                      size_t chunk, size_t cap, uint8_t *res, size_t rescap)
{
    dec d;
    uint8_t win[256];
    size_t total = 0, pos = 0, guard = 0;

    dec_init(&d, qp);
    while (pos < len) {
        size_t end = split < len ? (pos < split ? split : len)
                     : (chunk && len - pos > chunk ? pos + chunk : len);
        while (pos < end) {
            size_t used = 999, w = dec_run(&d, in + pos, end - pos, &used, win, cap);
            if (used > end - pos || w > cap || (used < end - pos && w < cap) ||
                (used == 0 && w == 0) || total + w > rescap || ++guard > 100000)
                return (size_t)-1;
            memcpy(res + total, win, w);
            total += w;
            pos += used;
        }
    }
    for (;;) {
        size_t w = dec_fin(&d, win, cap);
        if (w == 0)
            break;
        if (w > cap || total + w > rescap || ++guard > 100000)
            return (size_t)-1;
        memcpy(res + total, win, w);
        total += w;
    }
    return total;
}

typedef struct {
    const char *in;
    size_t inlen; /* 0: strlen */
    const char *out;
    size_t outlen; /* 0: strlen */
} bvec;

static const bvec b64_vec[] = {
    /* RFC 4648 section 10 */
    {"", 0, "", 0},
    {"Zg==", 0, "f", 0},
    {"Zm8=", 0, "fo", 0},
    {"Zm9v", 0, "foo", 0},
    {"Zm9vYg==", 0, "foob", 0},
    {"Zm9vYmE=", 0, "fooba", 0},
    {"Zm9vYmFy", 0, "foobar", 0},
    /* MIME line breaks, junk, missing padding, concatenation */
    {"Zm9v\r\nYmFy\r\n", 0, "foobar", 0},
    {"Zm9v!YmFy*", 0, "foobar", 0},
    {" Z m 9 v ", 0, "foo", 0},
    {"Zm9vYg", 0, "foob", 0},
    {"Zg==Zg==", 0, "ff", 0},
    {"Zg=\r\n=Zm8=", 0, "ffo", 0},
    {"Z", 0, "", 0},
    {"////", 0, "\xFF\xFF\xFF", 0},
    {"AAAA", 0, "\0\0\0", 3},
    {"SWYgeW91IGNhbiByZWFkIHRoaXMgeW91IHVuZGVyc3RhbmQgdGhlIGV4YW1wbGUu", 0,
     "If you can read this you understand the example.", 0},
    {"\x80\xFFZm9v\0", 7, "foo", 0},
};

static const bvec qp_vec[] = {
    /* RFC 2045 6.7 */
    {"Now's the time =\r\nfor all folk to come=\r\n to the aid of their country.",
     0, "Now's the time for all folk to come to the aid of their country.", 0},
    {"a=3Db", 0, "a=b", 0},
    {"=E9t=C3=A9", 0, "\xE9t\xC3\xA9", 0},
    {"=e9", 0, "\xE9", 0},
    {"a = b", 0, "a = b", 0},
    {"a =\tb", 0, "a =\tb", 0},
    {"abc   \r\ndef", 0, "abc\r\ndef", 0},
    {"abc \t \ndef", 0, "abc\ndef", 0},
    {"abc=  \r\ndef", 0, "abcdef", 0},
    {"abc=\t\ndef", 0, "abcdef", 0},
    {"x=\n", 0, "x", 0},
    {"x=", 0, "x", 0},
    {"x=A", 0, "x=A", 0},
    {"x=Ag", 0, "x=Ag", 0},
    {"x=G1", 0, "x=G1", 0},
    {"x==41", 0, "x=A", 0},
    {"x   ", 0, "x", 0},
    {"x\r", 0, "x\r", 0},
    {"x  \r", 0, "x\r", 0},
    {"x \ry", 0, "x \ry", 0},
    {"x \r\r\n", 0, "x \r\r\n", 0},
    {"=\r=\r\n", 0, "=\r", 0},
    {"= \rz", 0, "= \rz", 0},
    {"=  ", 0, "", 0},
    {"\xE9\x80\0z", 4, "\xE9\x80\0z", 4},
    {"line1\r\nline2\r\n", 0, "line1\r\nline2\r\n", 0},
};

static void test_stream(const char *what, bool qp, const bvec *v, size_t nv)
{
    static uint8_t one[4096], got[4096];

    for (size_t i = 0; i < nv; i++) {
        const uint8_t *in = (const uint8_t *)v[i].in;
        size_t len = v[i].inlen ? v[i].inlen : strlen(v[i].in);
        size_t elen = v[i].outlen ? v[i].outlen : strlen(v[i].out);
        size_t n1 = dec_all(qp, in, len, len, len + 1, sizeof one, one, sizeof one);
        unsigned bad = 0;

        if (!check(n1 == elen && memcmp(one, v[i].out, elen) == 0,
                   "%s vector %zu: one-shot gave %zu bytes, want %zu", what, i,
                   n1, elen)) {
            if (n1 != (size_t)-1) {
                printf("  got ");
                check_show((const char *)one, n1);
                printf("\n  want ");
                check_show(v[i].out, elen);
                putchar('\n');
            }
            continue;
        }
        /* every 2-way split, with a roomy output and with cap 1 */
        for (size_t k = 0; k <= len; k++) {
            for (size_t cap = 1; cap <= 256; cap += 255) {
                size_t n = dec_all(qp, in, len, k, 0, cap, got, sizeof got);
                if (n != n1 || memcmp(got, one, n1) != 0) {
                    if (bad++ == 0)
                        printf("FAIL: %s vector %zu split at %zu cap %zu\n", what,
                               i, k, cap);
                }
            }
        }
        /* one byte at a time, roomy and cap 1, and chunks of 3 at cap 2 */
        static const size_t cfg[][2] = {{1, 256}, {1, 1}, {3, 2}, {7, 1}};
        for (size_t c = 0; c < N_ELEM(cfg); c++) {
            size_t n = dec_all(qp, in, len, len, cfg[c][0], cfg[c][1], got, sizeof got);
            if (n != n1 || memcmp(got, one, n1) != 0) {
                if (bad++ == 0)
                    printf("FAIL: %s vector %zu chunk %zu cap %zu\n", what, i,
                           cfg[c][0], cfg[c][1]);
            }
        }
        check(bad == 0, "%s vector %zu: %u split runs differ", what, i, bad);
    }
}

/* Pseudo-random hostile bodies: every split must still agree. */
static void test_stream_fuzz(void)
{
    static const char alpha[] = "=\r\n \tAz09+/=E9Gg";
    uint32_t x = 12345;
    unsigned bad = 0;
    uint8_t in[200], one[600], got[600];

    for (int round = 0; round < 300; round++) {
        size_t len = (size_t)(round % 97) + 1;
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            in[i] = (x >> 24) % 5 == 0 ? (uint8_t)(x >> 8)
                                       : (uint8_t)alpha[(x >> 16) % (sizeof alpha - 1)];
        }
        for (int qp = 0; qp < 2; qp++) {
            size_t n1 = dec_all(qp, in, len, len, len + 1, 256, one, sizeof one);
            if (n1 == (size_t)-1) {
                bad++;
                continue;
            }
            for (size_t k = 0; k <= len; k += 3) {
                size_t n = dec_all(qp, in, len, k, 0, 1, got, sizeof got);
                if (n != n1 || memcmp(got, one, n1) != 0)
                    bad++;
            }
            size_t n = dec_all(qp, in, len, len, 1, 1, got, sizeof got);
            if (n != n1 || memcmp(got, one, n1) != 0)
                bad++;
        }
    }
    check(bad == 0, "stream fuzz: %u mismatches", bad);
}

static void test_stream_api(void)
{
    satchel_mime_b64 b;
    satchel_mime_qp q;
    uint8_t out[8];
    size_t used = 99;

    satchel_mime_b64_init(&b);
    check(satchel_mime_b64_decode(&b, (const uint8_t *)"Zm9v", 4, &used, out, 0) == 0 &&
              used == 1, "b64 cap 0 stops before output");
    satchel_mime_qp_init(&q);
    check(satchel_mime_qp_decode(&q, (const uint8_t *)"ab", 2, &used, out, 0) == 0 &&
              used == 0, "qp cap 0 consumes nothing");
    check(satchel_mime_qp_decode(NULL, (const uint8_t *)"ab", 2, &used, out, 8) == 0 &&
              used == 0, "qp NULL state");
    /* Garbage state must not index out of bounds. */
    memset(&q, 0xFF, sizeof q);
    size_t w = satchel_mime_qp_decode(&q, (const uint8_t *)"ab", 2, &used, out, 8);
    check(w == 2 && used == 2 && memcmp(out, "ab", 2) == 0, "qp corrupt state reset");
    memset(&b, 0xFF, sizeof b);
    w = satchel_mime_b64_decode(&b, (const uint8_t *)"Zm9v", 4, &used, out, 8);
    check(w == 3 && memcmp(out, "foo", 3) == 0, "b64 corrupt state reset");

    /* Whitespace runs beyond the bound pass through; the rest is trimmed. */
    {
        uint8_t in[128], exp[128], got[256];
        size_t n = 0, e = 0;
        for (int pre = 0; pre < 2; pre++) {
            n = e = 0;
            if (pre)
                in[n++] = '=';
            else
                in[n++] = exp[e++] = 'a';
            for (int k = 0; k < 100; k++)
                in[n++] = ' ';
            memcpy(in + n, "\r\nb", 3);
            n += 3;
            if (pre)
                exp[e++] = '=';
            for (int k = 0; k < SATCHEL_MIME_QP_WS_MAX; k++)
                exp[e++] = ' ';
            memcpy(exp + e, "\r\nb", 3);
            e += 3;
            bool ok = true;
            for (size_t k = 0; k <= n; k++) {
                size_t g = dec_all(true, in, n, k, 0, k % 2 ? 1 : 256, got, sizeof got);
                ok &= g == e && memcmp(got, exp, e) == 0;
            }
            check(ok, "qp long whitespace run (prefix %d)", pre);
        }
    }
}

int main(void)
{
    test_decode_header();
    test_to_utf8();
    test_header_get();
    test_dates();
    test_format_from();
    test_stream("base64", false, b64_vec, N_ELEM(b64_vec));
    test_stream("qp", true, qp_vec, N_ELEM(qp_vec));
    test_stream_fuzz();
    test_stream_api();
    return check_report("test_mime");
}
