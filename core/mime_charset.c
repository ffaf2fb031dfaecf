/* Charsets to UTF-8: UTF-8 (validated), US-ASCII, ISO-8859-1/-15 and
 * Windows-1252.  See include/satchel/mime.h for the contract. */
#include "mime_int.h"

size_t satchel_mime_utf8_tail(const uint8_t *in, size_t len)
{
    size_t k = 0, total;
    uint8_t lead, lo, hi;

    if (!in)
        return 0;
    /* A sequence is at most 4 bytes, so at most 3 can be waiting. */
    while (k < 3 && k < len && (in[len - 1 - k] & 0xC0) == 0x80)
        k++;
    if (k == len)
        return 0;
    lead = in[len - 1 - k];
    total = u8_lead(lead, &lo, &hi) + 1u;
    if (total == 1)
        return 0;
    if (k + 1 >= total)
        return 0; /* complete, or too long to be one sequence */
    /* Holding back bytes no continuation can fix would only delay U+FFFD. */
    if (k >= 1 && (in[len - k] < lo || in[len - k] > hi))
        return 0;
    return k + 1;
}

/* ---- Charsets ---------------------------------------------------------- */


/* 0x80-0x9F of Windows-1252; 0 marks the five undefined bytes. */
static const uint16_t cp1252_hi[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
    0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

int mime_charset_lookup(const char *name, size_t len)
{
    static const char *const utf8[] = {"utf-8", "utf8", "csutf8",
                                       "unicode-1-1-utf-8", "x-unicode20utf8"};
    /* WHATWG maps all of these to windows-1252. */
    static const char *const w1252[] = {
        "windows-1252", "cp1252", "x-cp1252", "cswindows1252", "ms-ansi",
        "iso-8859-1", "iso8859-1", "iso_8859-1", "iso_8859-1:1987", "iso88591",
        "8859-1", "latin1", "latin-1", "l1", "iso-ir-100", "ibm819", "cp819",
        "csisolatin1", "us-ascii", "ascii", "us", "iso646-us", "ansi_x3.4-1968",
        "ansi_x3.4-1986", "iso-ir-6", "iso_646.irv:1991", "csascii", "ibm367",
        "cp367"};
    static const char *const l9[] = {
        "iso-8859-15", "iso8859-15", "iso_8859-15", "iso885915", "latin-9",
        "latin9", "l9", "csisolatin9", "iso_8859-15:1998"};
    size_t i;

    if (!name)
        return CS_UNKNOWN;
    for (i = 0; i < sizeof utf8 / sizeof utf8[0]; i++)
        if (satchel_ascii_ieq(name, len, utf8[i]))
            return CS_UTF8;
    for (i = 0; i < sizeof w1252 / sizeof w1252[0]; i++)
        if (satchel_ascii_ieq(name, len, w1252[i]))
            return CS_1252;
    for (i = 0; i < sizeof l9 / sizeof l9[0]; i++)
        if (satchel_ascii_ieq(name, len, l9[i]))
            return CS_8859_15;
    return CS_UNKNOWN;
}

bool satchel_mime_charset_known(const char *name, size_t len)
{
    return mime_charset_lookup(name, len) != CS_UNKNOWN;
}

static uint32_t single_byte(int cs, uint8_t b)
{
    if (b < 0x80)
        return b;
    if (b < 0xA0) {
        /* C1 controls are never meant in mail and are dangerous in
         * terminals (0x9B is CSI), so undefined ones become U+FFFD. */
        if (cs == CS_1252 && cp1252_hi[b - 0x80])
            return cp1252_hi[b - 0x80];
        return REPL;
    }
    if (cs == CS_8859_15) {
        switch (b) {
        case 0xA4: return 0x20AC;
        case 0xA6: return 0x0160;
        case 0xA8: return 0x0161;
        case 0xB4: return 0x017D;
        case 0xB8: return 0x017E;
        case 0xBC: return 0x0152;
        case 0xBD: return 0x0153;
        case 0xBE: return 0x0178;
        default: break;
        }
    }
    return b;
}

void mime_cs_byte(int cs, u8dec *d, uint8_t b, wb *w)
{
    if (cs == CS_UTF8)
        u8_feed(d, b, w);
    else
        wb_cp(w, single_byte(cs, b));
}

int satchel_mime_to_utf8(const char *charset, size_t charset_len,
                         const uint8_t *in, size_t len,
                         char *out, size_t cap, size_t *out_len)
{
    wb w;
    u8dec d;
    int cs, rc;

    if (out_len)
        *out_len = 0;
    if ((!in && len) || (!out && cap) || (!charset && charset_len))
        return SATCHEL_E_INVAL;
    cs = mime_charset_lookup(charset, charset_len);
    if (cs == CS_UNKNOWN) {
        if (cap)
            out[0] = '\0';
        return SATCHEL_E_NOTSUP;
    }
    wb_init(&w, out, cap, false);
    u8_reset(&d);
    for (size_t i = 0; i < len && !w.trunc; i++)
        mime_cs_byte(cs, &d, in[i], &w);
    u8_flush(&d, &w);
    rc = wb_end(&w);
    if (out_len)
        *out_len = w.len;
    return rc < 0 ? rc : 0;
}
