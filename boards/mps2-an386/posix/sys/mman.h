/* What LMDB needs of <sys/mman.h>, which newlib lacks: the board maps the
 * store file into PSRAM (posix_shim.c).  No MDB_WRITEMAP: the map is only
 * read through, every write is a pwrite/writev that writes through. */
#ifndef SATCHEL_SYS_MMAN_H
#define SATCHEL_SYS_MMAN_H

#include <stddef.h>
#include <sys/types.h>

#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_SHARED 1
#define MAP_FAILED ((void *)-1)
#define MS_ASYNC 1
#define MS_SYNC 4

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int munmap(void *addr, size_t len);
int msync(void *addr, size_t len, int flags);

#endif
