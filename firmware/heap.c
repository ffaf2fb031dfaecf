#include "app.h"

static void *hc_alloc(void *ctx, size_t size)
{
    satchel_heap_counter *h = ctx;
    void *p;
    h->allocs++;
    if (h->fail_at && h->allocs == h->fail_at)
        return NULL;
    p = h->under->alloc(h->under->ctx, size);
    if (p) {
        h->now += size;
        if (h->now > h->peak)
            h->peak = h->now;
    }
    return p;
}

static void hc_free(void *ctx, void *ptr, size_t size)
{
    satchel_heap_counter *h = ctx;
    if (!ptr)
        return;
    h->now -= size;
    h->under->free(h->under->ctx, ptr, size);
}

void satchel_heap_counter_init(satchel_heap_counter *h,
                               const satchel_allocator *under)
{
    h->under = under ? under : satchel_allocator_default();
    h->now = h->peak = 0;
    h->allocs = 0;
    h->fail_at = 0;
    h->self.alloc = hc_alloc;
    h->self.free = hc_free;
    h->self.ctx = h;
}
