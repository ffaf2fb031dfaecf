/* ARM semihosting (QEMU -semihosting-config enable=on,target=native): host
 * files in QEMU's working directory, host time and host entropy for the
 * emulated board.  Calls block the CPU until the host answers. */
#ifndef SATCHEL_SEMIHOST_H
#define SATCHEL_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/* Open modes (the semihosting spec's fopen-style table). */
#define SH_MODE_RB 1   /* "rb" */
#define SH_MODE_RPB 3  /* "r+b": read and write an existing file */
#define SH_MODE_WPB 7  /* "w+b": create or truncate */

/* A host handle (>= 0) or -1. */
int sh_open(const char *path, int mode);
int sh_close(int h);
/* Bytes not written/read (0: all), as the spec says, or -1. */
long sh_write(int h, const void *buf, size_t len);
long sh_read(int h, void *buf, size_t len);
/* 0 or -1. */
int sh_seek(int h, uint32_t pos);
/* File length or -1. */
long sh_flen(int h);
/* Host wall clock, seconds since 1970. */
uint32_t sh_time(void);
/* Write a NUL-terminated string to QEMU's own stderr/stdout (debugging). */
void sh_write0(const char *s);
/* Ask QEMU to exit: status 0 when code is 0, else 1. */
void sh_exit(int code);

#endif
