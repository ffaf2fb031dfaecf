/* Compile-time options, lwIP style: every option has a default here, and a
 * board overrides any of them in its own satchel_board_opts.h (found on the
 * include path when SATCHEL_BOARD_OPTS is defined).  Sizes are in bytes. */
#ifndef SATCHEL_OPT_H
#define SATCHEL_OPT_H

#ifdef SATCHEL_BOARD_OPTS
#include "satchel_board_opts.h"
#endif

/* Longest response line (excluding literal bodies) the parser accepts. */
#ifndef SATCHEL_OPT_MAX_LINE
#define SATCHEL_OPT_MAX_LINE (64u * 1024u)
#endif

/* Per-response arena holding the parsed argument tree and short strings.
 * Responses whose tree does not fit are parsed to the end but marked
 * truncated, so a hostile or huge ENVELOPE cannot grow the heap. */
#ifndef SATCHEL_OPT_RESP_ARENA
#define SATCHEL_OPT_RESP_ARENA (32u * 1024u)
#endif

/* Literals up to this size are kept in the arena; longer ones keep only
 * this prefix there and stream in full to the literal sink. */
#ifndef SATCHEL_OPT_LITERAL_INLINE
#define SATCHEL_OPT_LITERAL_INLINE (8u * 1024u)
#endif

/* Largest literal the parser accepts at all (64-bit). */
#ifndef SATCHEL_OPT_MAX_LITERAL
#define SATCHEL_OPT_MAX_LITERAL (1ull << 32)
#endif

/* Deepest parenthesis nesting accepted (BODYSTRUCTURE of nested
 * message/rfc822 parts is the deepest legitimate case). */
#ifndef SATCHEL_OPT_MAX_DEPTH
#define SATCHEL_OPT_MAX_DEPTH 48
#endif

/* Messages per header FETCH window, and per LMDB commit batch. */
#ifndef SATCHEL_OPT_FETCH_WINDOW
#define SATCHEL_OPT_FETCH_WINDOW 250
#endif

/* Header windows in flight at most (each one command slot and 13 bytes of
 * bookkeeping).  How many are sent is decided from what is measured, up to
 * this: see SATCHEL_OPT_PIPE_MS. */
#ifndef SATCHEL_OPT_WINDOWS_MAX
#define SATCHEL_OPT_WINDOWS_MAX 96
#endif

/* Header responses kept asked for: twice the bandwidth-delay product plus
 * this many milliseconds of responses at the rate measured so far, and at
 * least SATCHEL_OPT_PIPE_MIN bytes.  The extra covers what the transport
 * holds between the server and the parser (socket and TLS buffers, several
 * MB on a loopback), so the server never waits for the client's next
 * command.  It costs no client memory (the answers wait in the network) and
 * asks only for headers the sync needs anyway; what a cut loses is
 * uncommitted and fetched again. */
#ifndef SATCHEL_OPT_PIPE_MS
#define SATCHEL_OPT_PIPE_MS 4000u
#endif
#ifndef SATCHEL_OPT_PIPE_MIN
#define SATCHEL_OPT_PIPE_MIN (16u * 1024u * 1024u)
#endif

/* Body downloads: bytes asked for per partial FETCH, and bytes per stored
 * chunk (the unit of resume after a cut). */
#ifndef SATCHEL_OPT_BODY_REQUEST
#define SATCHEL_OPT_BODY_REQUEST (256u * 1024u)
#endif
#ifndef SATCHEL_OPT_BODY_CHUNK
#define SATCHEL_OPT_BODY_CHUNK (16u * 1024u)
#endif

/* The client's command queue: commands are queued as parts (text, strings,
 * mailbox names, literals read from a source as they go out) and
 * serialized as the output drains.  SATCHEL_OPT_CMDQ holds the parts of
 * queued commands and must take the largest one whole (a literal read from
 * a source takes under 32 bytes whatever its size): a UID set of a 40-change
 * replay batch (440 bytes), a keyword list and a mailbox name, or a
 * SASL PLAIN response (520 bytes).  SATCHEL_OPT_OUTBUF is the serialized
 * bytes handed to the port at a time (one TLS record or TCP send); any
 * size works, smaller only means more sends. */
#ifndef SATCHEL_OPT_CMDQ
#define SATCHEL_OPT_CMDQ (1024u + SATCHEL_OPT_MAX_FOLDER_NAME)
#endif
#ifndef SATCHEL_OPT_OUTBUF
#define SATCHEL_OPT_OUTBUF 1024u
#endif

/* Stored text fields: subject, from, message-id (UTF-8, truncated at a
 * character boundary). */
#ifndef SATCHEL_OPT_MAX_FIELD
#define SATCHEL_OPT_MAX_FIELD 256u
#endif

/* Serialized BODYSTRUCTURE kept per message; longer ones are marked as
 * truncated and refetched when a body is opened. */
#ifndef SATCHEL_OPT_MAX_BODYSTRUCTURE
#define SATCHEL_OPT_MAX_BODYSTRUCTURE 4096u
#endif


/* Longest folder name kept, in bytes of UTF-8 (or of the server's bytes
 * for a name that is not modified UTF-7).  IMAP sets no limit; this bounds
 * memory: the client, the store's scratch and every folder or queue entry
 * copy hold a name of this size.  A longer name a server lists is reported
 * as a folder error naming the limit, and a longer mkdir is refused.  The
 * store keys folders by id, so any length up to this is stored. */
#ifndef SATCHEL_OPT_MAX_FOLDER_NAME
#define SATCHEL_OPT_MAX_FOLDER_NAME 4096u
#endif

/* Default per-command timeout for ports that enforce one (ms). */
#ifndef SATCHEL_OPT_TIMEOUT_MS
#define SATCHEL_OPT_TIMEOUT_MS 30000u
#endif

/* Slowest answer accepted, in bytes per second: besides the silence
 * timeout, the oldest command in flight must end within the timeout plus
 * what it can legitimately return at this rate (a server that sends a
 * byte every few seconds otherwise keeps a command alive forever). */
#ifndef SATCHEL_OPT_MIN_RATE
#define SATCHEL_OPT_MIN_RATE 512u
#endif

/* LMDB map size: the hard ceiling of the store file. */
/* Longest store directory path the store's open checks handle. */
#ifndef SATCHEL_OPT_STORE_PATH_MAX
#define SATCHEL_OPT_STORE_PATH_MAX 240
#endif

#ifndef SATCHEL_OPT_STORE_MAP_SIZE
#define SATCHEL_OPT_STORE_MAP_SIZE (256ull * 1024u * 1024u)
#endif

/* BODYSTRUCTURE walks.  core/body.c refuses multipart nesting deeper than
 * SATCHEL_OPT_BODY_DEPTH as malformed.  Its recursion (walk(), one frame a
 * level, then one leaf() frame) fits SATCHEL_OPT_BODY_STACK bytes of stack
 * on a Cortex-M4 built -Os; so does the BODYSTRUCTURE serializer in
 * core/fetch_map.c, whose depth the parser bounds (SATCHEL_OPT_MAX_DEPTH).
 * tests/check_core_portable.sh measures both with -fstack-usage and fails
 * when they exceed it.  Callees outside the recursion (MIME decoding of a
 * file name, at most a few hundred bytes) come on top. */
#ifndef SATCHEL_OPT_BODY_DEPTH
#define SATCHEL_OPT_BODY_DEPTH 32
#endif
#ifndef SATCHEL_OPT_BODY_STACK
#define SATCHEL_OPT_BODY_STACK 3072u
#endif

#endif
