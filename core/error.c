#include "satchel/error.h"

const char *satchel_strerror(int err)
{
    switch (err) {
    case SATCHEL_OK: return "ok";
    case SATCHEL_E_AGAIN: return "would block";
    case SATCHEL_E_INVAL: return "invalid argument";
    case SATCHEL_E_NOTFOUND: return "not found";
    case SATCHEL_E_RANGE: return "value out of range or buffer too small";
    case SATCHEL_E_BUSY: return "busy";
    case SATCHEL_E_OFFLINE: return "not available offline";
    case SATCHEL_E_SERVER: return "server refused the command";
    case SATCHEL_E_AUTH: return "authentication failed";
    case SATCHEL_E_TIMEOUT: return "timed out";
    case SATCHEL_E_STORE_FULL: return "store is full";
    case SATCHEL_E_NOTSUP: return "not supported";
    case SATCHEL_E_DISK_FULL: return "disk full";
    case SATCHEL_E_FATAL: return "fatal error";
    case SATCHEL_E_NOMEM: return "out of memory";
    case SATCHEL_E_PROTO: return "protocol error (malformed server response)";
    case SATCHEL_E_PROTO_LIMIT: return "protocol error (response exceeds a limit)";
    case SATCHEL_E_IO: return "connection failed or closed";
    case SATCHEL_E_TLS: return "TLS failure";
    case SATCHEL_E_CERT: return "server certificate not trusted";
    case SATCHEL_E_SECURITY: return "refused: would expose credentials without TLS";
    case SATCHEL_E_STORE: return "store error";
    case SATCHEL_E_INTERNAL: return "internal error";
    case SATCHEL_E_DAMAGED: return "damaged store";
    case SATCHEL_E_PERM: return "permission denied";
    case SATCHEL_E_READONLY: return "read-only file system";
    case SATCHEL_E_NOTDIR: return "not a directory";
    default: return "unknown error";
    }
}
