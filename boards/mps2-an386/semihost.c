#include "semihost.h"

#include <string.h>

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_SEEK 0x0A
#define SYS_FLEN 0x0C
#define SYS_TIME 0x11
#define SYS_EXIT 0x18

static long sh_call(int op, void *arg)
{
    register long r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int sh_open(const char *path, int mode)
{
    uint32_t a[3] = {(uint32_t)path, (uint32_t)mode, (uint32_t)strlen(path)};
    return (int)sh_call(SYS_OPEN, a);
}

int sh_close(int h)
{
    uint32_t a[1] = {(uint32_t)h};
    return (int)sh_call(SYS_CLOSE, a);
}

long sh_write(int h, const void *buf, size_t len)
{
    uint32_t a[3] = {(uint32_t)h, (uint32_t)buf, (uint32_t)len};
    return sh_call(SYS_WRITE, a);
}

long sh_read(int h, void *buf, size_t len)
{
    uint32_t a[3] = {(uint32_t)h, (uint32_t)buf, (uint32_t)len};
    return sh_call(SYS_READ, a);
}

int sh_seek(int h, uint32_t pos)
{
    uint32_t a[2] = {(uint32_t)h, pos};
    return sh_call(SYS_SEEK, a) == 0 ? 0 : -1;
}

long sh_flen(int h)
{
    uint32_t a[1] = {(uint32_t)h};
    return sh_call(SYS_FLEN, a);
}

uint32_t sh_time(void)
{
    return (uint32_t)sh_call(SYS_TIME, NULL);
}

void sh_write0(const char *s)
{
    sh_call(SYS_WRITE0, (void *)s);
}

void sh_exit(int code)
{
    /* On AArch32 r1 is the reason itself: ApplicationExit is status 0,
     * anything else status 1. */
    sh_call(SYS_EXIT, (void *)(code == 0 ? 0x20026u : 0x20023u));
}
