/* The board's persistent storage as the LMDB shim (posix_shim.c) sees it:
 * whole named files read at open and written through at an offset.  Under
 * QEMU the back end is semihosting (storage_semihost.c); on real hardware
 * it is flash or an SD card, and that is the one file to replace. */
#ifndef SATCHEL_STORAGE_H
#define SATCHEL_STORAGE_H

#include <stddef.h>
#include <stdint.h>

/* Open name for reading and writing, creating it empty when create is set
 * and it does not exist (an existing file is never truncated).  Returns a
 * handle >= 0 and the size in *size, or -1. */
int storage_open(const char *name, int create, uint32_t *size);
/* Read or write len bytes at off.  0 or -1. */
int storage_read(int h, uint32_t off, void *buf, size_t len);
int storage_write(int h, uint32_t off, const void *buf, size_t len);
/* Make every completed write durable.  0 or -1. */
int storage_sync(int h);
void storage_close(int h);

#endif
