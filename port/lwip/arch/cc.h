/* lwIP architecture glue for the simulator (Linux, GCC/Clang). */
#ifndef LWIP_ARCH_CC_H
#define LWIP_ARCH_CC_H

#include <stdint.h>
#include <stdlib.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define BYTE_ORDER BIG_ENDIAN
#else
#define BYTE_ORDER LITTLE_ENDIAN
#endif

/* The host's <netinet/in.h> declares htons & co.; lwIP must not define
 * them as macros too (it uses lwip_htons internally). */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS

/* Diagnostics to stderr; a failed assertion aborts (a bug, not an
 * input problem). */
void satchel_lwip_diag(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void satchel_lwip_assert(const char *msg, int line, const char *file);
#define LWIP_PLATFORM_DIAG(x) do { satchel_lwip_diag x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) satchel_lwip_assert((x), __LINE__, __FILE__)

/* Random numbers (initial ports, ISN hooks) from the kernel. */
uint32_t satchel_lwip_rand(void);
#define LWIP_RAND() satchel_lwip_rand()

#endif
