/* Storage on the host's files through QEMU semihosting, in QEMU's working
 * directory.  Writes go to the host file at once, so they survive QEMU
 * being killed. */
#include "storage.h"

#include "semihost.h"

int storage_open(const char *name, int create, uint32_t *size)
{
    /* newlib would turn O_RDWR|O_CREAT into "w+", which truncates: open
     * the existing file read-write first, and create only when that
     * fails. */
    int h = sh_open(name, SH_MODE_RPB);
    long len;
    if (h < 0 && create)
        h = sh_open(name, SH_MODE_WPB);
    if (h < 0)
        return -1;
    len = sh_flen(h);
    if (len < 0) {
        sh_close(h);
        return -1;
    }
    *size = (uint32_t)len;
    return h;
}

int storage_read(int h, uint32_t off, void *buf, size_t len)
{
    if (sh_seek(h, off) < 0)
        return -1;
    return sh_read(h, buf, len) == 0 ? 0 : -1;
}

int storage_write(int h, uint32_t off, const void *buf, size_t len)
{
    if (sh_seek(h, off) < 0)
        return -1;
    return sh_write(h, buf, len) == 0 ? 0 : -1;
}

int storage_sync(int h)
{
    /* Each semihosting write is a host write(): what completed is in the
     * host's page cache, which a killed QEMU does not lose. */
    (void)h;
    return 0;
}

void storage_close(int h)
{
    sh_close(h);
}
