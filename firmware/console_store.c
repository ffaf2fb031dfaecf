/* Console group: the store itself.  `store check` reads every record and
 * LMDB tree, `store salvage DIR` copies what is readable into a new store
 * (the queue first), `store backup DIR` takes a compacted copy while the
 * store stays in use.  A check that finds problems fails the command. */
#include <string.h>

#include "console_int.h"

static void problem(void *ctx, const char *what)
{
    satchel_console *con = ctx;
    con_kv_item(con);
    con_kv_str(con, "what", what, "problem: %s\n");
    con_kv_item_end(con);
}

static int cmd_store(satchel_console *con, int argc, char **argv)
{
    satchel_store *st = con->app->store;
    satchel_store_report r;
    char err[300];
    int rc, check = strcmp(argv[1], "check") == 0;
    if (strcmp(argv[1], "backup") == 0 && argc == 3) {
        rc = satchel_store_backup(st, argv[2], err, sizeof err);
        if (rc < 0)
            return con_error(con, rc, "store backup: %s", err);
        con_kv_begin(con);
        con_kv_bool(con, "ok", 1, NULL);
        con_kv_str(con, "backup", argv[2], "backup written to %s\n");
        return con_kv_end(con);
    }
    if (!((check && argc == 2) || (strcmp(argv[1], "salvage") == 0 && argc == 3)))
        return con_error(con, SATCHEL_E_INVAL,
                         "usage: store check | store salvage DIR | store backup DIR");
    con_kv_begin(con);
    con_kv_list(con, "problems");
    rc = check ? satchel_store_check(st, problem, con, &r)
               : satchel_store_salvage(st, argv[2], problem, con, &r);
    con_kv_list_end(con);
    con_kv_u64(con, "records", r.records, check ? "store check: %u records read, "
                                                : "store salvage: %u records read, ");
    con_kv_u64(con, "damaged", r.damaged, "%u damaged, ");
    con_kv_u64(con, "problem_count", r.problems, "%u problems");
    if (!check) {
        con_kv_u64(con, "copied", r.copied, ", %u records copied");
        con_kv_str(con, "to", argv[2], " to %s");
    }
    con_kv_bool(con, "ok", rc == 0, NULL);
    if (rc < 0 && rc != SATCHEL_E_DAMAGED) {
        con_kv_i64(con, "code", rc, NULL);
        con_kv_str(con, "error", satchel_strerror(rc), "; error: %s");
    }
    con_kv_str(con, NULL, "", "\n");
    con_kv_end(con);
    return rc;
}

const satchel_console_cmd satchel_console_cmds_store[] = {
    {"store", "store check | store salvage DIR | store backup DIR",
     "verify every record; copy what is readable to a new store; back up", 1, 2,
     cmd_store},
    {NULL, NULL, NULL, 0, 0, NULL},
};
