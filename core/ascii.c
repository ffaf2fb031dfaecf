#include "satchel/ascii.h"

char satchel_ascii_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch + ('a' - 'A')) : ch;
}

int satchel_ascii_ieq(const char *a, size_t an, const char *b)
{
    size_t i;
    for (i = 0; i < an; i++)
        if (!b[i] || satchel_ascii_lower(a[i]) != satchel_ascii_lower(b[i]))
            return 0;
    return b[an] == '\0';
}

int satchel_ascii_hex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = satchel_ascii_lower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Index i is bit 1u << i (SATCHEL_FLAG_SEEN is 0x01, ... DRAFT 0x10). */
static const char *const flag_names[SATCHEL_FLAG_COUNT] = {
    "\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"};

const char *satchel_flag_name(unsigned i)
{
    return i < SATCHEL_FLAG_COUNT ? flag_names[i] : (const char *)0;
}

uint32_t satchel_flag_bit(const char *name, size_t n)
{
    unsigned i;
    for (i = 0; i < SATCHEL_FLAG_COUNT; i++)
        if (satchel_ascii_ieq(name, n, flag_names[i]))
            return 1u << i;
    return 0;
}
