/* Content-Transfer-Encoding: streaming base64 and quoted-printable
 * decoders.  See include/satchel/mime.h for the contract. */
#include "mime_int.h"

/* The two streaming decoders share their contract (include/satchel/mime.h):
 * a NULL state, or NULL input or output where bytes are claimed, decodes
 * nothing and consumes nothing. */
static bool bad_args(const void *st, const uint8_t *in, size_t len, size_t *consumed,
                     const uint8_t *out, size_t cap)
{
    if (st && (in || !len) && (out || !cap))
        return false;
    if (consumed)
        *consumed = 0;
    return true;
}

/* Reports i input bytes consumed and returns the o bytes written. */
static size_t done(size_t *consumed, size_t i, size_t o)
{
    if (consumed)
        *consumed = i;
    return o;
}

/* ---- Base64 ------------------------------------------------------------ */

static int b64val(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (is_digit(c)) return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

void satchel_mime_b64_init(satchel_mime_b64 *st)
{
    if (st) {
        st->acc = 0;
        st->bits = 0;
    }
}

size_t satchel_mime_b64_decode(satchel_mime_b64 *st, const uint8_t *in,
                               size_t len, size_t *consumed, uint8_t *out,
                               size_t cap)
{
    size_t i = 0, o = 0;

    if (bad_args(st, in, len, consumed, out, cap))
        return 0;
    if (st->bits > 6) /* never set by us: an uninitialised struct */
        satchel_mime_b64_init(st);
    /* Stop before a character that would need room we do not have; one
     * character never yields more than one byte. */
    for (; i < len; i++) {
        int v = b64val(in[i]);
        if (in[i] == '=') {
            /* Padding ends the quantum; leftover bits are padding. */
            st->acc = 0;
            st->bits = 0;
            continue;
        }
        if (v < 0)
            continue;
        if (st->bits >= 2 && o >= cap)
            break;
        st->acc = ((st->acc << 6) | (uint32_t)v) & 0x3FFFu;
        st->bits = (uint8_t)(st->bits + 6);
        if (st->bits >= 8) {
            st->bits = (uint8_t)(st->bits - 8);
            out[o++] = (uint8_t)(st->acc >> st->bits);
            st->acc &= (1u << st->bits) - 1u;
        }
    }
    return done(consumed, i, o);
}

size_t satchel_mime_b64_finish(satchel_mime_b64 *st, uint8_t *out,
                               size_t cap)
{
    (void)out;
    (void)cap;
    /* Fewer than 8 leftover bits can only be padding or a cut quantum. */
    satchel_mime_b64_init(st);
    return 0;
}

/* ---- Quoted-printable -------------------------------------------------- */

/* States name what buf holds: input bytes whose meaning depends on what
 * comes next.  A byte that settles them either consumes itself or marks
 * buf as literal output ("flush") and is looked at again afterwards, so a
 * single call never has to emit more than it has room for. */
enum {
    QP_TEXT,   /* buf empty */
    QP_WS,     /* WSP+ */
    QP_WS_CR,  /* WSP* CR */
    QP_EQ,     /* "=" */
    QP_EQ_HEX, /* "=" HEX */
    QP_EQ_WS,  /* "=" WSP+ */
    QP_EQ_CR   /* "=" WSP* CR */
};

void satchel_mime_qp_init(satchel_mime_qp *st)
{
    if (st)
        memset(st, 0, sizeof *st);
}

static void qp_push(satchel_mime_qp *st, uint8_t c, uint8_t state)
{
    if (st->n < sizeof st->buf) /* only a caller-corrupted state is full */
        st->buf[st->n++] = c;
    st->state = state;
}

static void qp_literal(satchel_mime_qp *st)
{
    st->flush = 1;
    st->head = 0;
}

static void qp_discard(satchel_mime_qp *st)
{
    st->n = 0;
    st->state = QP_TEXT;
}

/* Returns 1 if c was consumed.  Called only with room for one byte. */
static size_t qp_step(satchel_mime_qp *st, uint8_t c, uint8_t *out, size_t *o)
{
    bool ws = is_wsp(c);

    switch (st->state) {
    case QP_TEXT:
        if (c == '=')
            qp_push(st, c, QP_EQ);
        else if (ws)
            qp_push(st, c, QP_WS);
        else if (c == '\r')
            qp_push(st, c, QP_WS_CR);
        else
            out[(*o)++] = c;
        return 1;
    case QP_WS:
        if (ws && st->n < SATCHEL_MIME_QP_WS_MAX) {
            qp_push(st, c, QP_WS);
            return 1;
        }
        if (c == '\r') {
            qp_push(st, c, QP_WS_CR);
            return 1;
        }
        if (c == '\n')
            qp_discard(st); /* trailing whitespace */
        else
            qp_literal(st);
        return 0;
    case QP_WS_CR:
        if (c == '\n') {
            st->buf[0] = '\r'; /* drop the whitespace, keep the CR */
            st->n = 1;
        }
        qp_literal(st);
        return 0;
    case QP_EQ:
        if (satchel_ascii_hex((char)c) >= 0) {
            qp_push(st, c, QP_EQ_HEX);
            return 1;
        }
        if (ws) {
            qp_push(st, c, QP_EQ_WS);
            return 1;
        }
        if (c == '\r') {
            qp_push(st, c, QP_EQ_CR);
            return 1;
        }
        if (c == '\n') {
            qp_discard(st); /* soft line break */
            return 1;
        }
        qp_literal(st);
        return 0;
    case QP_EQ_HEX:
        if (satchel_ascii_hex((char)c) >= 0) {
            out[(*o)++] = (uint8_t)(satchel_ascii_hex((char)st->buf[1]) * 16 +
                                    satchel_ascii_hex((char)c));
            qp_discard(st);
            return 1;
        }
        qp_literal(st);
        return 0;
    case QP_EQ_WS:
        if (ws && st->n < SATCHEL_MIME_QP_WS_MAX + 1) {
            qp_push(st, c, QP_EQ_WS);
            return 1;
        }
        if (c == '\r') {
            qp_push(st, c, QP_EQ_CR);
            return 1;
        }
        if (c == '\n') {
            qp_discard(st); /* soft line break with trailing whitespace */
            return 1;
        }
        qp_literal(st);
        return 0;
    default: /* QP_EQ_CR */
        if (c == '\n') {
            qp_discard(st);
            return 1;
        }
        qp_literal(st);
        return 0;
    }
}

/* Drains decided output; true when nothing is left waiting. */
static bool qp_drain(satchel_mime_qp *st, uint8_t *out, size_t cap, size_t *o)
{
    if (!st->flush)
        return true;
    while (st->head < st->n && *o < cap)
        out[(*o)++] = st->buf[st->head++];
    if (st->head < st->n)
        return false;
    st->flush = 0;
    st->head = 0;
    qp_discard(st);
    return true;
}

size_t satchel_mime_qp_decode(satchel_mime_qp *st, const uint8_t *in,
                              size_t len, size_t *consumed, uint8_t *out,
                              size_t cap)
{
    size_t i = 0, o = 0;

    if (bad_args(st, in, len, consumed, out, cap))
        return 0;
    if (st->state > QP_EQ_CR || st->n > sizeof st->buf || st->head > st->n)
        satchel_mime_qp_init(st); /* corrupt state: never index past buf */
    for (;;) {
        if (!qp_drain(st, out, cap, &o))
            break;
        if (i >= len || o >= cap)
            break;
        i += qp_step(st, in[i], out, &o);
    }
    return done(consumed, i, o);
}

size_t satchel_mime_qp_finish(satchel_mime_qp *st, uint8_t *out, size_t cap)
{
    size_t o = 0;

    if (!st || (!out && cap))
        return 0;
    if (st->state > QP_EQ_CR || st->n > sizeof st->buf || st->head > st->n) {
        satchel_mime_qp_init(st);
        return 0;
    }
    if (!st->flush) {
        /* End of input ends the line: trailing whitespace and a final
         * soft break go; an unfinished "=X" is literal. */
        switch (st->state) {
        case QP_WS_CR:
            st->buf[0] = '\r';
            st->n = 1;
            qp_literal(st);
            break;
        case QP_EQ_HEX:
            qp_literal(st);
            break;
        default:
            qp_discard(st);
            break;
        }
    }
    if (qp_drain(st, out, cap, &o))
        satchel_mime_qp_init(st);
    return o;
}
