/* Satchel error codes.
 *
 * Every Satchel function that can fail returns an int: 0 (SATCHEL_OK) or a
 * negative satchel_err.  Codes at or below SATCHEL_E_FATAL mean the object
 * that returned them is unusable and must be freed (or, for a client, the
 * connection must be dropped); codes above it are recoverable.
 *
 * A server's NO or BAD answer is protocol data, not an error code: it is
 * reported through the response text of the operation, never as a value here.
 */
#ifndef SATCHEL_ERROR_H
#define SATCHEL_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum satchel_err {
    SATCHEL_OK = 0,
    /* Recoverable. */
    SATCHEL_E_AGAIN = -1,        /* would block / need more data */
    SATCHEL_E_INVAL = -2,        /* bad argument from the caller or user */
    SATCHEL_E_NOTFOUND = -3,     /* no such folder, message or key */
    SATCHEL_E_RANGE = -4,        /* value out of range, buffer too small */
    SATCHEL_E_BUSY = -5,         /* an operation is already running */
    SATCHEL_E_OFFLINE = -6,      /* needs the network and we are offline */
    SATCHEL_E_SERVER = -7,       /* the server refused (NO/BAD); see text */
    SATCHEL_E_AUTH = -8,         /* authentication refused */
    SATCHEL_E_TIMEOUT = -9,      /* a wait ran past its deadline */
    SATCHEL_E_STORE_FULL = -10,  /* the store hit its size limit */
    SATCHEL_E_NOTSUP = -11,      /* the server lacks a needed capability */
    SATCHEL_E_DISK_FULL = -12,   /* the file system holding the store is full */
    /* Fatal boundary: everything from here down ends the object/session. */
    SATCHEL_E_FATAL = -64,
    SATCHEL_E_NOMEM = -65,       /* allocation failed */
    SATCHEL_E_PROTO = -66,       /* malformed or hostile server data */
    SATCHEL_E_PROTO_LIMIT = -67, /* line, literal or nesting cap exceeded */
    SATCHEL_E_IO = -68,          /* transport failure or connection closed */
    SATCHEL_E_TLS = -69,         /* TLS handshake or record failure */
    SATCHEL_E_CERT = -70,        /* certificate or host name not trusted */
    SATCHEL_E_SECURITY = -71,    /* would send secrets unprotected; refused */
    SATCHEL_E_STORE = -72,       /* store I/O error or damaged record */
    SATCHEL_E_INTERNAL = -73,    /* invariant broken (a bug) */
    SATCHEL_E_DAMAGED = -74,     /* the store's file is damaged */
    SATCHEL_E_PERM = -75,        /* the OS denied access to the store */
    SATCHEL_E_READONLY = -76,    /* the store is on read-only media */
    SATCHEL_E_NOTDIR = -77       /* the store path is not a directory */
} satchel_err;

/* True when err is at or past the fatal boundary. */
#define SATCHEL_ERR_IS_FATAL(err) ((err) <= SATCHEL_E_FATAL)

/* Short English description of err, for the console and logs.  Never NULL;
 * the string is static and valid for the life of the program. */
const char *satchel_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
