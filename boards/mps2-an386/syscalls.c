/* newlib's remaining system calls: the heap, wall time, exit.  (The file
 * calls are in posix_shim.c.) */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "board_hw.h"
#include "semihost.h"

extern uint8_t __heap_start, __heap_end;
static uint8_t *brk = &__heap_start;
static uint32_t boot_time;
static uint64_t boot_us;

void *_sbrk(ptrdiff_t incr);
void *_sbrk(ptrdiff_t incr)
{
    uint8_t *old = brk;
    if (incr < 0 || (size_t)(&__heap_end - brk) < (size_t)incr) {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk += incr;
    return old;
}

/* newlib's malloc does not give memory back to _sbrk: the break is the
 * heap's high-water mark. */
size_t board_heap_high_water(void)
{
    return (size_t)(brk - &__heap_start);
}

/* The host's clock at the first call, advanced by FREE_RUN: certificates
 * are checked against it. */
int _gettimeofday(struct timeval *tv, void *tz);
int _gettimeofday(struct timeval *tv, void *tz)
{
    uint64_t us;
    (void)tz;
    if (!boot_time) {
        boot_time = sh_time();
        boot_us = board_now_us();
    }
    us = board_now_us() - boot_us;
    tv->tv_sec = (time_t)(boot_time + us / 1000000u);
    tv->tv_usec = (suseconds_t)(us % 1000000u);
    return 0;
}

void _exit(int code);
void _exit(int code)
{
    sh_exit(code);
    for (;;)
        __asm__ volatile("wfi");
}
