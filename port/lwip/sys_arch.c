/* lwIP's platform hooks for NO_SYS=1 that do not depend on the link:
 * diagnostics and assertions (sys_now() and LWIP_RAND() come from the link,
 * in lwip_port.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lwip/sys.h"

void satchel_lwip_diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lwip: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

void satchel_lwip_assert(const char *msg, int line, const char *file)
{
    fprintf(stderr, "lwip: assertion \"%s\" failed at line %d in %s\n", msg,
            line, file);
    fflush(stderr);
    abort();
}
