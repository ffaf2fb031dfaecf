/* Console commands that change mail (recorded offline, replayed later):
 * flag, move, delete, mkdir, and the queue itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console_int.h"
#include "satchel/mutf7.h"
#include "satchel/ops.h"

/* The start of a command's success object: {"ok":true,"action":..}, or
 * "ACTION: ok" in text.  The caller adds fields and ends it. */
static void ok_begin(satchel_console *con, const char *action)
{
    con_kv_begin(con);
    con_kv_bool(con, "ok", 1, NULL);
    con_kv_str(con, "action", action, "%s: ok\n");
}

static int op_error(satchel_console *con, int rc, const char *what)
{
    if (rc == SATCHEL_E_NOTFOUND)
        return con_error(con, rc, "%s: no such folder or message", what);
    if (rc == SATCHEL_E_BUSY)
        return con_error(con, rc, "%s: folder already exists", what);
    return con_error(con, rc, "%s: %s", what, satchel_strerror(rc));
}

static int cmd_flag(satchel_console *con, int argc, char **argv)
{
    uint32_t uid, add = 0, del = 0;
    char kwa[64] = "", kwd[64] = "";
    int i, rc;
    if (con_parse_u32(argv[2], &uid) < 0 || uid == 0)
        return con_error(con, SATCHEL_E_INVAL, "bad UID '%s'", argv[2]);
    for (i = 3; i < argc; i++)
        if (satchel_ops_parse_flag(argv[i], &add, &del, kwa, sizeof kwa, kwd,
                                   sizeof kwd) < 0)
            return con_error(con, SATCHEL_E_INVAL,
                             "bad flag '%s' (use +\\Seen, -\\Flagged, +$Forwarded ...)",
                             argv[i]);
    rc = satchel_ops_flag(con->app->store, argv[1], uid, add, del, kwa, kwd);
    if (rc < 0)
        return op_error(con, rc, "flag");
    ok_begin(con, "flag");
    con_kv_u64(con, "uid", uid, NULL);
    return con_kv_end(con);
}

static int cmd_move(satchel_console *con, int argc, char **argv)
{
    uint32_t uid, nu = 0;
    int rc;
    (void)argc;
    if (con_parse_u32(argv[2], &uid) < 0 || uid == 0)
        return con_error(con, SATCHEL_E_INVAL, "bad UID '%s'", argv[2]);
    if (strcmp(argv[1], argv[3]) == 0)
        return con_error(con, SATCHEL_E_INVAL, "move: source and destination are the same");
    rc = satchel_ops_move(con->app->store, argv[1], uid, argv[3], &nu);
    if (rc < 0)
        return op_error(con, rc, "move");
    ok_begin(con, "move");
    con_kv_u64(con, "uid", uid, NULL);
    con_kv_u64(con, "new_uid", nu, NULL);
    return con_kv_end(con);
}

static int cmd_delete(satchel_console *con, int argc, char **argv)
{
    uint32_t uid, nu = 0;
    int rc, trashed = 0;
    (void)argc;
    if (con_parse_u32(argv[2], &uid) < 0 || uid == 0)
        return con_error(con, SATCHEL_E_INVAL, "bad UID '%s'", argv[2]);
    rc = satchel_ops_delete(con->app->store, argv[1], uid, &trashed, &nu);
    if (rc < 0)
        return op_error(con, rc, "delete");
    ok_begin(con, "delete");
    con_kv_u64(con, "uid", uid, NULL);
    con_kv_bool(con, "to_trash", trashed, NULL);
    con_kv_u64(con, "new_uid", nu, NULL);
    return con_kv_end(con);
}

static int cmd_mkdir(satchel_console *con, int argc, char **argv)
{
    satchel_mutf7_error e;
    size_t n = strlen(argv[1]);
    int rc;
    (void)argc;
    /* Names are UTF-8 here and in the store; the wire form is made when the
     * command goes out, so anything that is not UTF-8 is refused now. */
    if (satchel_mutf7_encode(argv[1], n, NULL, 0, NULL, &e) == SATCHEL_E_INVAL)
        return con_error(con, SATCHEL_E_INVAL, "mkdir: bad folder name at byte %zu: %s",
                         e.at, e.why);
    if (n > SATCHEL_OPT_MAX_FOLDER_NAME)
        return con_error(con, SATCHEL_E_INVAL,
                         "mkdir: the folder name is %zu bytes, longer than the "
                         "%u-byte limit (SATCHEL_OPT_MAX_FOLDER_NAME)",
                         n, (unsigned)SATCHEL_OPT_MAX_FOLDER_NAME);
    rc = satchel_ops_mkdir(con->app->store, argv[1]);
    if (rc < 0)
        return op_error(con, rc, "mkdir");
    ok_begin(con, "mkdir");
    return con_kv_end(con);
}

static const char *op_name(int type)
{
    switch (type) {
    case SATCHEL_OP_FLAG: return "flag";
    case SATCHEL_OP_MOVE: return "move";
    case SATCHEL_OP_EXPUNGE: return "expunge";
    case SATCHEL_OP_MKDIR: return "mkdir";
    default: return "?";
    }
}

static void flagdelta(char *buf, size_t cap, const satchel_op *op)
{
    size_t n = 0;
    int i;
    buf[0] = '\0';
    for (i = 0; i < (int)SATCHEL_FLAG_COUNT; i++) {
        if (op->add & (1u << i))
            n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s+%s", n ? " " : "",
                                  satchel_flag_name((unsigned)i));
        if (op->del & (1u << i))
            n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s-%s", n ? " " : "",
                                  satchel_flag_name((unsigned)i));
    }
    if (op->kw_add[0] && n < cap)
        n += (size_t)snprintf(buf + n, cap - n, "%s+%s", n ? " " : "", op->kw_add);
    if (op->kw_del[0] && n < cap)
        snprintf(buf + n, cap - n, "%s-%s", n ? " " : "", op->kw_del);
}

static int cmd_queue(satchel_console *con, int argc, char **argv)
{
    satchel_store *st = con->app->store;
    satchel_op *op = &con->app->scratch_op;
    uint64_t at = 0, pending = 0, failed = 0;
    int rc;
    if (argc >= 2) {
        char *end;
        unsigned long long id;
        if (argc != 3 || (strcmp(argv[1], "retry") != 0 && strcmp(argv[1], "drop") != 0))
            return con_error(con, SATCHEL_E_INVAL, "usage: queue [retry ID | drop ID]");
        id = strtoull(argv[2], &end, 10);
        if (*end || id == 0 || argv[2][0] < '0' || argv[2][0] > '9')
            return con_error(con, SATCHEL_E_INVAL, "bad queue ID '%s'", argv[2]);
        rc = argv[1][0] == 'r' ? satchel_ops_retry(st, id) : satchel_ops_drop(st, id);
        if (rc == SATCHEL_E_INVAL)
            return con_error(con, rc, "queue entry %llu is not a failed one", id);
        if (rc < 0)
            return op_error(con, rc, argv[1]);
        ok_begin(con, argv[1]);
        con_kv_u64(con, "id", id, NULL);
        return con_kv_end(con);
    }
    satchel_store_queue_counts(st, &pending, &failed);
    con_kv_begin(con);
    con_kv_u64(con, "pending", pending, "queue: %u pending, ");
    con_kv_u64(con, "failed", failed, "%u failed\n");
    con_kv_list(con, "entries");
    while (satchel_store_op_next(st, NULL, at, op) == 0) {
        char delta[200];
        int mk = op->type == SATCHEL_OP_MKDIR, bad = op->state == SATCHEL_OP_FAILED;
        at = op->id;
        flagdelta(delta, sizeof delta, op);
        con_kv_item(con);
        con_kv_u64(con, "id", op->id, "%6u ");
        con_kv_str(con, NULL, bad ? "FAILED" : "pending", "%-7s ");
        con_kv_str(con, "op", op_name(op->type), "%-7s ");
        con_kv_str(con, "state", bad ? "failed" : "pending", NULL);
        con_kv_str(con, "folder", mk ? op->dest : op->folder, "%s");
        if (!mk)
            con_kv_u64(con, "uid", op->uid, " %u");
        if (op->type == SATCHEL_OP_MOVE)
            con_kv_str(con, "dest", op->dest, " -> %s");
        if (op->type == SATCHEL_OP_FLAG)
            con_kv_str(con, "flags", delta, " %s");
        con_kv_u64(con, "attempts", op->attempts, NULL);
        if (bad)
            con_kv_str(con, "reason", op->reason, "  (%s)");
        con_kv_str(con, NULL, "", "\n");
        con_kv_item_end(con);
    }
    con_kv_list_end(con);
    return con_kv_end(con);
}

const satchel_console_cmd satchel_console_cmds_changes[] = {
    {"flag", "flag FOLDER UID +FLAG|-FLAG ...", "change flags (offline too; queued)", 3,
     6, cmd_flag},
    {"move", "move FOLDER UID DEST", "move a message (offline too; queued)", 3, 3,
     cmd_move},
    {"delete", "delete FOLDER UID", "move to Trash, or expunge there (queued)", 2, 2,
     cmd_delete},
    {"mkdir", "mkdir NAME", "create a folder (offline too; queued)", 1, 1, cmd_mkdir},
    {"queue", "queue [retry ID | drop ID]", "pending and failed changes, with reasons",
     0, 2, cmd_queue},
    {NULL, NULL, NULL, 0, 0, NULL},
};
