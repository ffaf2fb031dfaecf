/* TLS over any satchel_port byte stream, with mbedTLS.
 *
 * Verification is always on unless the config turns it off explicitly:
 * the chain must lead to a configured CA, the name must match (the host name
 * is always set; mbedTLS 2.28 silently skips the check otherwise), and the
 * protocol is at least TLS 1.2. */
#ifndef SATCHEL_TLS_H
#define SATCHEL_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "satchel/alloc.h"
#include "satchel/port.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct satchel_tls satchel_tls;

typedef struct satchel_tls_config {
    /* The trusted CAs: NUL-terminated PEM text of one or more certificates
     * (a CA bundle).  Required; read only during satchel_tls_new.  Reading
     * it from a file, flash or a system bundle is the caller's job. */
    const char *ca_pem;
    const char *hostname; /* name or IP literal to verify (a name is also
                             sent as SNI); required */
} satchel_tls_config;

/* Returns 0, SATCHEL_E_NOMEM, SATCHEL_E_INVAL (no host name, or longer
 * than 255 bytes) or SATCHEL_E_CERT (no CA PEM, or no certificate in it). */
int satchel_tls_new(const satchel_allocator *alloc, const satchel_tls_config *cfg,
                    satchel_tls **out);
void satchel_tls_free(satchel_tls *t);

/* Run the handshake over conn (already connected) within timeout_ms.
 * Returns 0, SATCHEL_E_CERT (untrusted certificate or name), SATCHEL_E_TLS,
 * SATCHEL_E_TIMEOUT or SATCHEL_E_IO.  On failure, detail() says why. */
int satchel_tls_handshake(satchel_tls *t, const satchel_port *port,
                          satchel_conn *conn, uint32_t timeout_ms);
/* Same contract as satchel_port send/recv, on plaintext. */
long satchel_tls_send(satchel_tls *t, const uint8_t *buf, size_t len);
long satchel_tls_recv(satchel_tls *t, uint8_t *buf, size_t cap);
/* Bytes already decrypted and waiting (read them before waiting). */
size_t satchel_tls_pending(satchel_tls *t);
/* Session resumption (RFC 5077 tickets): offer a saved session before the
 * handshake; after it, save the (possibly new) session.  The blob is
 * opaque, up to SATCHEL_TLS_SESSION_MAX bytes, and holds the session's
 * secret: keep it where the password is kept safe (the store).
 * set_session returns 0 or SATCHEL_E_INVAL (unusable blob: ignored). */
#define SATCHEL_TLS_SESSION_MAX 2048
int satchel_tls_set_session(satchel_tls *t, const uint8_t *blob, size_t len);
int satchel_tls_get_session(satchel_tls *t, uint8_t *blob, size_t cap, size_t *len);
/* 1 if the last handshake resumed a saved session. */
int satchel_tls_resumed(const satchel_tls *t);

/* Send close_notify (best effort). */
void satchel_tls_close(satchel_tls *t);
/* Static or tls-owned text about the last failure; valid until next call. */
const char *satchel_tls_detail(const satchel_tls *t);
/* Negotiated version and cipher suite, or "" before a handshake. */
const char *satchel_tls_version(const satchel_tls *t);
const char *satchel_tls_ciphersuite(const satchel_tls *t);

#ifdef __cplusplus
}
#endif
#endif
