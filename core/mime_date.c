/* Dates: RFC 5322 Date, IMAP INTERNALDATE and RFC 3339 output.  See
 * include/satchel/mime.h for the contract. */
#include "mime_int.h"

/* ---- Dates ------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    /* Howard Hinnant's algorithm: proleptic Gregorian, no tables. */
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    int64_t era, doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int y, int m)
{
    static const uint8_t dm[12] = {31, 28, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

static const char *const month_abbr[12] = {
    "jan", "feb", "mar", "apr", "may", "jun",
    "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const month_full[12] = {
    "january", "february", "march", "april", "may", "june", "july",
    "august", "september", "october", "november", "december"};

/* 1..12 for a 3-letter or full English month name, else 0. */
static int month_of(const char *s, size_t n)
{
    for (int m = 0; m < 12; m++)
        if (satchel_ascii_ieq(s, n, month_abbr[m]) || satchel_ascii_ieq(s, n, month_full[m]))
            return m + 1;
    return 0;
}

static bool is_weekday(const char *s, size_t n)
{
    static const char *const abbr[7] = {"mon", "tue", "wed", "thu",
                                        "fri", "sat", "sun"};
    static const char *const d[7] = {"monday", "tuesday", "wednesday",
                                     "thursday", "friday", "saturday",
                                     "sunday"};
    for (int i = 0; i < 7; i++)
        if (satchel_ascii_ieq(s, n, abbr[i]) || satchel_ascii_ieq(s, n, d[i]))
            return true;
    return false;
}

/* Cursor over a date string; CFWS (spaces, folds, nested comments) is
 * skipped between tokens. */
typedef struct {
    const char *s;
    size_t n, i;
    bool bad;
} dcur;

static void d_cfws(dcur *c)
{
    while (c->i < c->n) {
        uint8_t ch = (uint8_t)c->s[c->i];
        if (is_wsp(ch) || ch == '\r' || ch == '\n') {
            c->i++;
        } else if (ch == '(') {
            size_t depth = 0;
            while (c->i < c->n) {
                ch = (uint8_t)c->s[c->i++];
                if (ch == '\\' && c->i < c->n)
                    c->i++;
                else if (ch == '(')
                    depth++;
                else if (ch == ')' && --depth == 0)
                    break;
            }
            if (depth) {
                c->bad = true; /* unterminated comment */
                return;
            }
        } else {
            return;
        }
    }
}

/* Reads 1..maxd digits; -1 if none. */
static long d_num(dcur *c, size_t maxd, size_t *ndig)
{
    long v = 0;
    size_t k = 0;
    d_cfws(c);
    while (c->i < c->n && is_digit((uint8_t)c->s[c->i])) {
        if (++k > maxd)
            return -1;
        v = v * 10 + (c->s[c->i++] - '0');
    }
    if (ndig)
        *ndig = k;
    return k ? v : -1;
}

static size_t d_word(dcur *c, const char **w)
{
    size_t st;
    d_cfws(c);
    st = c->i;
    while (c->i < c->n && is_alpha((uint8_t)c->s[c->i]))
        c->i++;
    *w = c->s + st;
    return c->i - st;
}

static bool d_char(dcur *c, char ch)
{
    d_cfws(c);
    if (c->i < c->n && c->s[c->i] == ch) {
        c->i++;
        return true;
    }
    return false;
}

static bool d_at_end(dcur *c)
{
    d_cfws(c);
    return !c->bad && c->i >= c->n;
}

static int named_zone(const char *w, size_t n)
{
    static const struct { char name[4]; int16_t min; } z[] = {
        {"ut", 0}, {"gmt", 0}, {"utc", 0}, {"est", -300}, {"edt", -240},
        {"cst", -360}, {"cdt", -300}, {"mst", -420}, {"mdt", -360},
        {"pst", -480}, {"pdt", -420}};
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++)
        if (satchel_ascii_ieq(w, n, z[i].name))
            return z[i].min;
    return 0; /* RFC 5322 4.3: unknown zones mean -0000 */
}

static bool mk_epoch(long y, long mo, long d, long h, long mi, long se,
                     int tz, int64_t *epoch, int *tz_min)
{
    int64_t t;
    if (y < 0 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
        d > days_in_month((int)y, (int)mo) || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || se < 0 || se > 60)
        return false;
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
        (int64_t)tz * 60;
    if (epoch)
        *epoch = t;
    if (tz_min)
        *tz_min = tz;
    return true;
}

/* "+hhmm" / "-hhmm" at the cursor (sign already peeked). */
static bool d_numzone(dcur *c, int *tz)
{
    int sign = c->s[c->i] == '-' ? -1 : 1;
    long hh, mm;
    size_t k = 0;

    c->i++;
    if (c->n - c->i < 4)
        return false;
    for (k = 0; k < 4; k++)
        if (!is_digit((uint8_t)c->s[c->i + k]))
            return false;
    hh = (c->s[c->i] - '0') * 10 + (c->s[c->i + 1] - '0');
    mm = (c->s[c->i + 2] - '0') * 10 + (c->s[c->i + 3] - '0');
    c->i += 4;
    if (mm > 59 || (c->i < c->n && is_digit((uint8_t)c->s[c->i])))
        return false;
    *tz = sign * (int)(hh * 60 + mm);
    return true;
}

int satchel_mime_parse_date(const char *s, size_t len, int64_t *epoch,
                            int *tz_min)
{
    dcur c = {s, len, 0, false};
    const char *w;
    size_t wl, nd;
    long day, mon, year, hh, mi, se = 0;
    int tz = 0;

    if (!s)
        return SATCHEL_E_INVAL;
    wl = d_word(&c, &w);
    if (wl) {
        if (!is_weekday(w, wl))
            return SATCHEL_E_INVAL;
        (void)d_char(&c, ',');
    }
    day = d_num(&c, 2, NULL);
    (void)d_char(&c, '-');
    wl = d_word(&c, &w);
    mon = month_of(w, wl);
    (void)d_char(&c, '-');
    year = d_num(&c, 4, &nd);
    if (c.bad || day < 0 || !mon || year < 0)
        return SATCHEL_E_INVAL;
    if (nd == 2)
        year += year < 50 ? 2000 : 1900;
    else if (nd == 3)
        year += 1900;
    else if (nd != 4)
        return SATCHEL_E_INVAL;
    hh = d_num(&c, 2, NULL);
    if (hh < 0 || !d_char(&c, ':'))
        return SATCHEL_E_INVAL;
    mi = d_num(&c, 2, NULL);
    if (mi < 0)
        return SATCHEL_E_INVAL;
    if (d_char(&c, ':')) {
        se = d_num(&c, 2, NULL);
        if (se < 0)
            return SATCHEL_E_INVAL;
    }
    d_cfws(&c);
    if (c.bad)
        return SATCHEL_E_INVAL;
    if (c.i < c.n && (c.s[c.i] == '+' || c.s[c.i] == '-')) {
        if (!d_numzone(&c, &tz))
            return SATCHEL_E_INVAL;
        (void)d_word(&c, &w); /* "+0200 CEST" */
    } else {
        wl = d_word(&c, &w);
        if (wl)
            tz = named_zone(w, wl);
    }
    if (!d_at_end(&c))
        return SATCHEL_E_INVAL;
    return mk_epoch(year, mon, day, hh, mi, se, tz, epoch, tz_min)
               ? 0 : SATCHEL_E_INVAL;
}

/* Exactly nd digits at s[*i]. */
static long fixed_num(const char *s, size_t n, size_t *i, size_t nd)
{
    long v = 0;
    if (n - *i < nd)
        return -1;
    for (size_t k = 0; k < nd; k++) {
        if (!is_digit((uint8_t)s[*i + k]))
            return -1;
        v = v * 10 + (s[*i + k] - '0');
    }
    *i += nd;
    return v;
}

int satchel_mime_parse_internaldate(const char *s, size_t len,
                                    int64_t *epoch, int *tz_min)
{
    size_t i = 0;
    long day, mon, year, hh, mi, se;
    dcur c;
    int tz;

    if (!s)
        return SATCHEL_E_INVAL;
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s++;
        len -= 2;
    }
    if (len > 0 && s[0] == ' ')
        i = 1; /* date-day-fixed: SP DIGIT */
    if (i == 0 && len >= 2 && is_digit((uint8_t)s[1]))
        day = fixed_num(s, len, &i, 2);
    else
        day = fixed_num(s, len, &i, 1);
    if (day < 0 || len - i < 5 || s[i] != '-' || s[i + 4] != '-')
        return SATCHEL_E_INVAL;
    mon = month_of(s + i + 1, 3);
    i += 5;
    year = fixed_num(s, len, &i, 4);
    if (!mon || year < 0 || i >= len || s[i++] != ' ')
        return SATCHEL_E_INVAL;
    hh = fixed_num(s, len, &i, 2);
    if (hh < 0 || i >= len || s[i++] != ':')
        return SATCHEL_E_INVAL;
    mi = fixed_num(s, len, &i, 2);
    if (mi < 0 || i >= len || s[i++] != ':')
        return SATCHEL_E_INVAL;
    se = fixed_num(s, len, &i, 2);
    if (se < 0 || i >= len || s[i++] != ' ' || i >= len ||
        (s[i] != '+' && s[i] != '-'))
        return SATCHEL_E_INVAL;
    c.s = s;
    c.n = len;
    c.i = i;
    c.bad = false;
    if (!d_numzone(&c, &tz) || c.i != len)
        return SATCHEL_E_INVAL;
    return mk_epoch(year, mon, day, hh, mi, se, tz, epoch, tz_min)
               ? 0 : SATCHEL_E_INVAL;
}

static void put_num(char *p, int64_t v, int nd)
{
    while (nd-- > 0) {
        p[nd] = (char)('0' + v % 10);
        v /= 10;
    }
}

int satchel_mime_format_rfc3339(int64_t epoch, int tz_min, char *out,
                                size_t cap)
{
    /* Years 0000..9999 with a day of slack either side; checked before
     * adding the offset so hostile values cannot overflow. */
    const int64_t lo = -62167219200 - 86400, hi = 253402300799 + 86400;
    int64_t local, days, secs, y, m, d;
    int atz;

    if (out && cap)
        out[0] = '\0';
    if (!out || cap < 26 || tz_min < -5999 || tz_min > 5999 || epoch < lo ||
        epoch > hi)
        return SATCHEL_E_RANGE;
    local = epoch + (int64_t)tz_min * 60;
    days = local / 86400;
    secs = local % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return SATCHEL_E_RANGE;
    put_num(out, y, 4);
    out[4] = '-';
    put_num(out + 5, m, 2);
    out[7] = '-';
    put_num(out + 8, d, 2);
    out[10] = 'T';
    put_num(out + 11, secs / 3600, 2);
    out[13] = ':';
    put_num(out + 14, secs / 60 % 60, 2);
    out[16] = ':';
    put_num(out + 17, secs % 60, 2);
    out[19] = tz_min < 0 ? '-' : '+';
    atz = tz_min < 0 ? -tz_min : tz_min;
    put_num(out + 20, atz / 60, 2);
    out[22] = ':';
    put_num(out + 23, atz % 60, 2);
    out[25] = '\0';
    return 25;
}
