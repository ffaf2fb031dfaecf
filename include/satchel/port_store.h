/* The store's file hooks (satchel_store_fs) for a POSIX host. */
#ifndef SATCHEL_PORT_STORE_H
#define SATCHEL_PORT_STORE_H

#include "satchel/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A static table, valid for the life of the program. */
const satchel_store_fs *satchel_store_fs_posix(void);

#ifdef __cplusplus
}
#endif
#endif
