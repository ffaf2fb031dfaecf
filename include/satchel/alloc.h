/* The single allocation hook.
 *
 * Every object constructor (satchel_*_new) takes a satchel_allocator; all heap
 * memory the object uses goes through it, so firmware can serve it from an
 * arena and tests can inject failures.  Pass NULL for the C library default.
 */
#ifndef SATCHEL_ALLOC_H
#define SATCHEL_ALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct satchel_allocator {
    /* Return size bytes (suitably aligned) or NULL. */
    void *(*alloc)(void *ctx, size_t size);
    /* Release ptr (NULL allowed); size is what was asked for at alloc. */
    void (*free)(void *ctx, void *ptr, size_t size);
    void *ctx;
} satchel_allocator;

/* The C library's malloc/free.  Static; valid for the life of the program. */
const satchel_allocator *satchel_allocator_default(void);

#ifdef __cplusplus
}
#endif
#endif
