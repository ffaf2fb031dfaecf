/* TLS over any satchel_port byte stream with mbedTLS 2.28, driven through
 * non-blocking bio callbacks so one module serves POSIX sockets and lwIP. */
#include "satchel/tls.h"
#include "satchel/ascii.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h> /* error codes only; I/O goes via the port */
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <string.h>

struct satchel_tls {
    const satchel_allocator *alloc;
    const satchel_port *port;
    satchel_conn *conn;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_ctr_drbg_context drbg;
    int seeded;
    int handshake_done;
    int have_session, resumed;
    mbedtls_ssl_session session;
    char host[256];
    uint8_t ip[16];  /* the host as an address, when it is an IP literal */
    size_t ip_len;
    char detail[256];
};

/* mbedTLS 2.28 matches names only against dNSName and CN.  For a server
 * given as an IP address, require an iPAddress subjectAltName equal to it
 * (RFC 6125 6.2.1); the CN is never trusted for an address. */
static int verify_ip(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    satchel_tls *t = ctx;
    const mbedtls_x509_sequence *san;
    if (depth != 0 || t->ip_len == 0)
        return 0;
    for (san = &crt->subject_alt_names; san && san->buf.p; san = san->next) {
        if (san->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) &&
            san->buf.len == t->ip_len && memcmp(san->buf.p, t->ip, t->ip_len) == 0)
            return 0;
    }
    *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
}

/* Dotted-quad IPv4 (four decimal parts, each 0-255, no leading zeros
 * beyond "0" itself) into out[0..3].  Returns 1 or 0. */
static int parse_ip4(const char *s, size_t len, uint8_t *out)
{
    size_t i = 0;
    int part;
    for (part = 0; part < 4; part++) {
        unsigned v = 0, digits = 0;
        if (part > 0) {
            if (i >= len || s[i] != '.')
                return 0;
            i++;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (digits == 1 && v == 0)
                return 0;
            v = v * 10 + (unsigned)(s[i] - '0');
            if (v > 255)
                return 0;
            digits++;
            i++;
        }
        if (digits == 0)
            return 0;
        out[part] = (uint8_t)v;
    }
    return i == len;
}

/* RFC 4291 2.2 text form of an IPv6 address (with "::" and a trailing
 * dotted quad) into out[0..15].  Returns 1 or 0. */
static int parse_ip6(const char *s, uint8_t *out)
{
    uint8_t w[16];
    size_t len = strlen(s), i = 0;
    int n = 0, gap = -1;

    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        i = 2;
    } else if (len > 0 && s[0] == ':') {
        return 0;
    }
    while (i < len) {
        size_t start = i;
        unsigned v = 0;
        int digits = 0;
        while (i < len && satchel_ascii_hex(s[i]) >= 0 && digits < 5) {
            v = v * 16 + (unsigned)satchel_ascii_hex(s[i]);
            digits++;
            i++;
        }
        if (i < len && s[i] == '.') { /* trailing IPv4 */
            if (n > 12 || !parse_ip4(s + start, len - start, w + n))
                return 0;
            n += 4;
            i = len;
            break;
        }
        if (digits == 0 || digits > 4 || n > 14)
            return 0;
        w[n++] = (uint8_t)(v >> 8);
        w[n++] = (uint8_t)v;
        if (i == len)
            break;
        if (s[i] != ':')
            return 0;
        i++;
        if (i < len && s[i] == ':') {
            if (gap >= 0)
                return 0;
            gap = n;
            i++;
        } else if (i == len) {
            return 0; /* a single trailing ':' */
        }
    }
    if (gap < 0) {
        if (n != 16)
            return 0;
        memcpy(out, w, 16);
        return 1;
    }
    if (n > 14)
        return 0;
    memset(out, 0, 16);
    memcpy(out, w, (size_t)gap);
    memcpy(out + 16 - (n - gap), w + gap, (size_t)(n - gap));
    return 1;
}

static int entropy_cb(void *ctx, unsigned char *buf, size_t len)
{
    const satchel_port *port = ctx;
    return port->entropy(port->ctx, buf, len) == 0
               ? 0
               : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

/* A port's send or recv result n as mbedTLS's bio wants it: the byte
 * count, `again` for SATCHEL_E_AGAIN, `failed` for any other error. */
static int bio_result(long n, int again, int failed)
{
    if (n == SATCHEL_E_AGAIN)
        return again;
    return n < 0 ? failed : (int)n;
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    satchel_tls *t = ctx;
    return bio_result(t->port->send(t->conn, buf, len), MBEDTLS_ERR_SSL_WANT_WRITE,
                      MBEDTLS_ERR_NET_SEND_FAILED);
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    satchel_tls *t = ctx;
    return bio_result(t->port->recv(t->conn, buf, len), MBEDTLS_ERR_SSL_WANT_READ,
                      MBEDTLS_ERR_NET_RECV_FAILED);
}

static const mbedtls_ecp_group_id curves[] = {
#if defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED)
    MBEDTLS_ECP_DP_CURVE25519,
#endif
#if defined(MBEDTLS_ECP_DP_SECP256R1_ENABLED)
    MBEDTLS_ECP_DP_SECP256R1,
#endif
#if defined(MBEDTLS_ECP_DP_SECP384R1_ENABLED)
    MBEDTLS_ECP_DP_SECP384R1,
#endif
#if defined(MBEDTLS_ECP_DP_SECP521R1_ENABLED)
    MBEDTLS_ECP_DP_SECP521R1,
#endif
    MBEDTLS_ECP_DP_NONE};

int satchel_tls_new(const satchel_allocator *alloc, const satchel_tls_config *cfg,
                    satchel_tls **out)
{
    satchel_tls *t;
    int rc;
    *out = NULL;
    if (!alloc)
        alloc = satchel_allocator_default();
    if (!cfg || !cfg->hostname || !cfg->hostname[0] ||
        strlen(cfg->hostname) >= sizeof t->host)
        return SATCHEL_E_INVAL;
    if (!cfg->ca_pem)
        return SATCHEL_E_CERT;
    t = alloc->alloc(alloc->ctx, sizeof *t);
    if (!t)
        return SATCHEL_E_NOMEM;
    memset(t, 0, sizeof *t);
    t->alloc = alloc;
    memcpy(t->host, cfg->hostname, strlen(cfg->hostname) + 1);
    if (parse_ip4(t->host, strlen(t->host), t->ip))
        t->ip_len = 4;
    else if (parse_ip6(t->host, t->ip))
        t->ip_len = 16;
    mbedtls_ssl_init(&t->ssl);
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_ssl_session_init(&t->session);
    /* PEM parsing wants the terminating NUL counted. */
    rc = mbedtls_x509_crt_parse(&t->ca, (const unsigned char *)cfg->ca_pem,
                                strlen(cfg->ca_pem) + 1);
    if (rc < 0 || t->ca.version == 0) {
        satchel_tls_free(t);
        return SATCHEL_E_CERT;
    }
    if (mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT,
                                    MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0) {
        satchel_tls_free(t);
        return SATCHEL_E_TLS;
    }
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
    mbedtls_ssl_conf_verify(&t->conf, verify_ip, t);
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    /* Key exchange groups, cheapest first: mbedTLS 2.28 offers the
     * strongest (P-521, P-384) first, and a server that follows the
     * client's order then costs a small device several times the CPU of
     * X25519 for each full handshake. */
    mbedtls_ssl_conf_curves(&t->conf, curves);
    *out = t;
    return 0;
}

void satchel_tls_free(satchel_tls *t)
{
    if (!t)
        return;
    mbedtls_ssl_free(&t->ssl);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_ssl_session_free(&t->session);
    t->alloc->free(t->alloc->ctx, t, sizeof *t);
}

static int map_tls_err(satchel_tls *t, int rc)
{
    char buf[160];
    if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
        char info[200];
        int n = mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
        if (n > 0 && info[n - 1] == '\n')
            info[n - 1] = '\0';
        snprintf(t->detail, sizeof t->detail, "certificate rejected: %s",
                 n > 0 ? info : "verification failed");
        return SATCHEL_E_CERT;
    }
    mbedtls_strerror(rc, buf, sizeof buf);
    snprintf(t->detail, sizeof t->detail, "TLS: %s", buf);
    if (rc == MBEDTLS_ERR_NET_RECV_FAILED || rc == MBEDTLS_ERR_NET_SEND_FAILED ||
        rc == MBEDTLS_ERR_SSL_CONN_EOF)
        return SATCHEL_E_IO;
    return SATCHEL_E_TLS;
}

int satchel_tls_handshake(satchel_tls *t, const satchel_port *port,
                          satchel_conn *conn, uint32_t timeout_ms)
{
    static const unsigned char pers[] = "satchel-tls";
    uint64_t deadline = port->now_ms(port->ctx) + timeout_ms;
    int rc;

    t->port = port;
    t->conn = conn;
    if (!t->seeded) {
        if (mbedtls_ctr_drbg_seed(&t->drbg, entropy_cb, (void *)port, pers,
                                  sizeof pers - 1) != 0) {
            snprintf(t->detail, sizeof t->detail, "no entropy for TLS");
            return SATCHEL_E_TLS;
        }
        mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
        if (mbedtls_ssl_setup(&t->ssl, &t->conf) != 0)
            return SATCHEL_E_NOMEM;
        t->seeded = 1;
    }
    /* Without a host name mbedTLS 2.28 skips the name check silently; an
     * address is checked by verify_ip instead (and sent as no SNI). */
    if (t->ip_len == 0 && mbedtls_ssl_set_hostname(&t->ssl, t->host) != 0)
        return SATCHEL_E_INVAL;
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    if (t->have_session && mbedtls_ssl_set_session(&t->ssl, &t->session) != 0)
        t->have_session = 0; /* unusable: a full handshake it is */
    for (;;) {
        uint64_t now;
        rc = mbedtls_ssl_handshake(&t->ssl);
        if (rc == 0)
            break;
        if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE)
            return map_tls_err(t, rc);
        now = port->now_ms(port->ctx);
        if (now >= deadline) {
            snprintf(t->detail, sizeof t->detail, "TLS handshake timed out");
            return SATCHEL_E_TIMEOUT;
        }
        if (port->wait(conn, rc == MBEDTLS_ERR_SSL_WANT_WRITE,
                       (uint32_t)(deadline - now)) < 0)
            return SATCHEL_E_IO;
    }
    /* VERIFY_REQUIRED already failed the handshake on a bad chain; this
     * guards against a future change of authmode. */
    if (mbedtls_ssl_get_verify_result(&t->ssl) != 0)
        return map_tls_err(t, MBEDTLS_ERR_X509_CERT_VERIFY_FAILED);
    t->handshake_done = 1;
    /* Resumed when the server accepted the offered session: the master
     * secret then carries over (with a ticket the session id is fresh, and
     * mbedTLS 2.28 has no direct flag). */
    t->resumed = 0;
    if (t->have_session) {
        const mbedtls_ssl_session *cur = mbedtls_ssl_get_session_pointer(&t->ssl);
        t->resumed = cur && memcmp(cur->master, t->session.master,
                                   sizeof cur->master) == 0;
    }
    return 0;
}

int satchel_tls_set_session(satchel_tls *t, const uint8_t *blob, size_t len)
{
    mbedtls_ssl_session_free(&t->session);
    mbedtls_ssl_session_init(&t->session);
    t->have_session = 0;
    if (mbedtls_ssl_session_load(&t->session, blob, len) != 0)
        return SATCHEL_E_INVAL;
    t->have_session = 1;
    return 0;
}

int satchel_tls_get_session(satchel_tls *t, uint8_t *blob, size_t cap, size_t *len)
{
    mbedtls_ssl_session s;
    int rc;
    *len = 0;
    if (!t->handshake_done)
        return SATCHEL_E_INVAL;
    mbedtls_ssl_session_init(&s);
    rc = mbedtls_ssl_get_session(&t->ssl, &s);
    if (rc == 0)
        rc = mbedtls_ssl_session_save(&s, blob, cap, len);
    mbedtls_ssl_session_free(&s);
    return rc == 0 ? 0 : SATCHEL_E_RANGE;
}

int satchel_tls_resumed(const satchel_tls *t)
{
    return t->resumed;
}

long satchel_tls_send(satchel_tls *t, const uint8_t *buf, size_t len)
{
    int rc = mbedtls_ssl_write(&t->ssl, buf, len);
    if (rc >= 0)
        return rc;
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE || rc == MBEDTLS_ERR_SSL_WANT_READ)
        return SATCHEL_E_AGAIN;
    return map_tls_err(t, rc);
}

long satchel_tls_recv(satchel_tls *t, uint8_t *buf, size_t cap)
{
    int rc = mbedtls_ssl_read(&t->ssl, buf, cap);
    if (rc >= 0)
        return rc;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return SATCHEL_E_AGAIN;
    if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return 0;
    return map_tls_err(t, rc);
}

size_t satchel_tls_pending(satchel_tls *t)
{
    return mbedtls_ssl_get_bytes_avail(&t->ssl);
}

void satchel_tls_close(satchel_tls *t)
{
    if (t->handshake_done)
        mbedtls_ssl_close_notify(&t->ssl);
}

const char *satchel_tls_detail(const satchel_tls *t)
{
    return t->detail[0] ? t->detail : "no TLS error";
}

const char *satchel_tls_version(const satchel_tls *t)
{
    return t->handshake_done ? mbedtls_ssl_get_version(&t->ssl) : "";
}

const char *satchel_tls_ciphersuite(const satchel_tls *t)
{
    return t->handshake_done ? mbedtls_ssl_get_ciphersuite(&t->ssl) : "";
}
