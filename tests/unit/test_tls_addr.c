/* The TLS module's own IP-literal parsing (it decides whether the server
 * name is checked as an address against iPAddress subjectAltNames or as a
 * DNS name), against the C library's inet_pton as the reference: a table of
 * edge cases, then seeded random strings over the characters that matter.
 * The module is included whole to reach its static functions. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../port/tls_mbedtls.c"

static int passed, failed;

static void check_one(const char *s)
{
    uint8_t got4[4], got6[16], want4[4], want6[16];
    int r4 = parse_ip4(s, strlen(s), got4), w4 = inet_pton(AF_INET, s, want4) == 1;
    int r6 = parse_ip6(s, got6), w6 = inet_pton(AF_INET6, s, want6) == 1;
    if (r4 != w4 || (r4 && memcmp(got4, want4, 4) != 0) || r6 != w6 ||
        (r6 && memcmp(got6, want6, 16) != 0)) {
        failed++;
        printf("FAIL: \"%s\": ipv4 %d (libc %d), ipv6 %d (libc %d)\n", s, r4, w4, r6, w6);
    } else {
        passed++;
    }
}

int main(void)
{
    static const char *const table[] = {
        "127.0.0.1", "0.0.0.0", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5",
        "01.2.3.4", "1.2.3.04", "1..2.3", "1.2.3.", ".1.2.3", "1.2.3.4 ", " 1.2.3.4",
        "1.2.3.-4", "1.2.3.4a", "localhost", "", "::", "::1", "1::", "1::2",
        "fe80::1", "FE80::AbCd", "2001:db8::8a2e:370:7334",
        "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7::",
        "::1:2:3:4:5:6:7", "1:2:3:4:5:6::7:8", ":::", "1:::2", "1::2::3", ":1::2",
        "1::2:", "12345::", "0000:0000::", "00000::", "::ffff:1.2.3.4",
        "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
        "::ffff:1.2.3", "::ffff:1.2.3.4:5", "1.2.3.4::", "[::1]", "::g", "g::",
        "1:2:3:4:5:6:7:8:", ":1:2:3:4:5:6:7:8", "::0:0:0:0:0:0:0", "0:0:0:0:0:0:0::",
    };
    static const char alphabet[] = "0123456789abcdef:.:.:F";
    unsigned long seed = 20261130;
    size_t i;
    char buf[48];
    const char *env = getenv("SATCHEL_SEED");
    if (env)
        seed = strtoul(env, NULL, 10);
    printf("seed %lu\n", seed);
    for (i = 0; i < sizeof table / sizeof table[0]; i++)
        check_one(table[i]);
    srand((unsigned)seed);
    for (i = 0; i < 200000; i++) {
        size_t n = (size_t)(rand() % 24), k;
        for (k = 0; k < n; k++)
            buf[k] = alphabet[rand() % (int)(sizeof alphabet - 1)];
        buf[n] = '\0';
        check_one(buf);
    }
    printf("test_tls_addr: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
