#include "satchel/alloc.h"

#include <stdlib.h>

static void *lib_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void lib_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    (void)size;
    free(ptr);
}

static const satchel_allocator lib_allocator = {lib_alloc, lib_free, NULL};

const satchel_allocator *satchel_allocator_default(void)
{
    return &lib_allocator;
}
