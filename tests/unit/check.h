/* The unit tests' check counter, one copy for the files that include it.
 *
 * CHECK(cond, fmt, ...) counts a pass, or prints "FAIL file:line: " and the
 * message and counts a failure (CHECK_THAT(cond): the message is cond;
 * with CHECK_CONTEXT, the row's name comes first); the line is flushed at once so it comes
 * before whatever a crash or a forked child prints next.
 * check_report(name) prints the closing "NAME: N passed, M failed" line CI
 * reads and returns the exit status.  check_show(s, n) prints bytes for a
 * failure message. */
#ifndef SATCHEL_TEST_CHECK_H
#define SATCHEL_TEST_CHECK_H

#include <stddef.h>
#include <stdio.h>

static int passed, failed;

/* A file whose checks run inside data rows defines CHECK_CONTEXT (an
 * expression naming the row, e.g. row->name) before including this, and
 * every failure names its row. */
#ifndef CHECK_CONTEXT
#define CHECK_CONTEXT ((const char *)NULL)
#endif

static inline void check_context_(const char *row)
{
    if (row)
        printf("[%s] ", row);
}

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                        \
            check_context_(CHECK_CONTEXT);                                     \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
            fflush(stdout);                                                    \
        }                                                                      \
    } while (0)

/* CHECK with the condition's own text as the message. */
#define CHECK_THAT(cond) CHECK(cond, "%s", #cond)

/* s[0..n) in double quotes, with control bytes, bytes above 0x7E, '"' and
 * '\\' as \xNN. */
static inline void check_show(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\')
            printf("\\x%02X", c);
        else
            putchar(c);
    }
    putchar('"');
}

static inline int check_report(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, passed, failed);
    return failed ? 1 : 0;
}

#endif
