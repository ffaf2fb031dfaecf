/* The POSIX file and memory-map calls LMDB makes, on a board without an
 * MMU or a file system (posix_shim.c).  The store file is loaded into
 * PSRAM when it is opened; mmap() hands out that copy, and every
 * pwrite/writev writes to it and through to storage.h, in order.  The lock
 * file lives only in RAM (one process). */
#ifndef SATCHEL_POSIX_SHIM_H
#define SATCHEL_POSIX_SHIM_H

#include <stdint.h>

/* Testing: make the nth storage write from now on (1 = the next) fail
 * with EIO, once; 0 turns it off. */
void shim_fail_write(uint32_t nth);
/* Storage writes and bytes written since boot. */
void shim_stats(uint32_t *writes, uint64_t *bytes);

#endif
