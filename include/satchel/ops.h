/* Offline operations: each applies its effect to the local store at once
 * and records it in the change queue, in one transaction, so a crash never
 * leaves one without the other.  They need no network; the client replays
 * the queue on the next connection, before it syncs (satchel_client_sync).
 *
 * Coalescing at record time:
 *  - flag changes to a message fold into its pending flag change; a change
 *    that cancels out (+\Seen then -\Seen) removes the entry;
 *  - moving a message that was itself moved offline retargets the pending
 *    move, and moving it back where it came from cancels it.
 * All return 0, SATCHEL_E_NOTFOUND (folder, message or queue entry),
 * SATCHEL_E_INVAL, or a store error. */
#ifndef SATCHEL_OPS_H
#define SATCHEL_OPS_H

#include <stdint.h>

#include "satchel/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Parse "+\\Seen", "-\\Flagged", "+$Forwarded" into bits or keywords. */
int satchel_ops_parse_flag(const char *arg, uint32_t *add, uint32_t *del,
                           char *kw_add, size_t kw_add_cap, char *kw_del,
                           size_t kw_del_cap);

int satchel_ops_flag(satchel_store *s, const char *folder, uint32_t uid,
                     uint32_t add, uint32_t del, const char *kw_add,
                     const char *kw_del);
/* *new_uid gets the message's placeholder UID in dest. */
int satchel_ops_move(satchel_store *s, const char *folder, uint32_t uid,
                     const char *dest, uint32_t *new_uid);
/* To the Trash role folder; expunge when already there or none exists.
 * *trashed tells which happened. */
int satchel_ops_delete(satchel_store *s, const char *folder, uint32_t uid,
                       int *trashed, uint32_t *new_uid);
int satchel_ops_mkdir(satchel_store *s, const char *name);
/* Failed entries: retry puts one back in the pending queue (with the local
 * effect applied again where it can be); drop forgets it. */
int satchel_ops_retry(satchel_store *s, uint64_t id);
int satchel_ops_drop(satchel_store *s, uint64_t id);

#ifdef __cplusplus
}
#endif
#endif
