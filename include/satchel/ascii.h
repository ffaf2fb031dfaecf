/* ASCII case rules for protocol words (RFC 9051 atoms, flag names, MIME
 * parameter names, folder role names): one definition for the engine.
 * Bytes outside A-Z are compared as they are. */
#ifndef SATCHEL_ASCII_H
#define SATCHEL_ASCII_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ch with A-Z mapped to a-z. */
char satchel_ascii_lower(char ch);
/* 1 when a[0..an) equals the NUL-terminated b, ignoring ASCII case; else 0. */
int satchel_ascii_ieq(const char *a, size_t an, const char *b);
/* The value of the hexadecimal digit ch (0-9, a-f, A-F): 0..15, or -1 for
 * any other byte. */
int satchel_ascii_hex(char ch);

/* The system flags the store keeps as bits (SATCHEL_FLAG_*, RFC 9051
 * 2.3.2), in bit order: satchel_flag_name(i) is the flag of bit 1u << i
 * for i < SATCHEL_FLAG_COUNT, NULL beyond.  The strings are static. */
#define SATCHEL_FLAG_COUNT 5u
const char *satchel_flag_name(unsigned i);
/* The SATCHEL_FLAG_* bit of name[0..n) ("\Seen", any case), or 0 for
 * anything else (keywords, \Recent). */
uint32_t satchel_flag_bit(const char *name, size_t n);

#ifdef __cplusplus
}
#endif

#endif
