/* Console commands about the session: status, sync, online/offline, stats. */
#include <stdio.h>
#include <string.h>

#include "console_int.h"

static int cmd_status(satchel_console *con, int argc, char **argv)
{
    satchel_app *app = con->app;
    satchel_store_stats st;
    static const char *const sec[] = {"tls", "starttls", "none"};
    int online = !app->cfg.offline && app->cfg.host;
    (void)argc;
    (void)argv;
    satchel_store_stats_get(app->store, &st);
    con_kv_begin(con);
    con_kv_bool(con, "online", online, NULL);
    con_kv_str(con, NULL, online ? "online" : "offline", "mode:     %s\n");
    if (app->cfg.host) {
        char hp[300];
        snprintf(hp, sizeof hp, "%s:%u", app->cfg.host, (unsigned)app->cfg.port);
        con_kv_str(con, "server", hp, "server:   %s");
    } else {
        con_kv_null(con, "server");
    }
    con_kv_str(con, "security", sec[app->cfg.security % 3],
               app->cfg.host ? " (%s)\n" : NULL);
    if (app->cfg.user)
        con_kv_str(con, "user", app->cfg.user, NULL);
    else
        con_kv_null(con, "user");
    con_kv_str(con, "store", con->store_path ? con->store_path : "",
               "store:    %s");
    con_kv_u64(con, "folders", st.folders, " (%u folders, ");
    con_kv_u64(con, "messages", st.messages, "%u messages)\n");
    con_kv_str(con, "stack", con->stack ? con->stack : app->port->name,
               "stack:    %s\n");
    con_kv_u64(con, "syncs", app->syncs, NULL);
    if (app->syncs == 0)
        con_kv_null(con, "last_result");
    else
        con_kv_str(con, "last_result", app->last_rc == 0 ? "ok" : app->last_error,
                   "last sync: %s\n");
    con_kv_obj(con, "tls");
    con_kv_str(con, "version", app->tls_version,
               app->tls_version[0] ? "tls:      %s " : NULL);
    con_kv_str(con, "cipher", app->tls_cipher, app->tls_version[0] ? "%s\n" : NULL);
    con_kv_bool(con, "resumed", app->tls_resumed, NULL);
    con_kv_obj_end(con);
    return con_kv_end(con);
}

struct sync_ctx {
    satchel_console *con;
    int errors;
};

static void on_event(void *ctx, const satchel_event *ev)
{
    struct sync_ctx *sc = ctx;
    satchel_console *con = sc->con;
    if (ev->type == SATCHEL_EV_ALERT) {
        con_kv_str(con, NULL, ev->text ? ev->text : "", "server alert: %s\n");
        con_flush(con);
        return;
    }
    con_kv_item(con);
    con_kv_str(con, "name", ev->folder, "%s: ");
    if (ev->type == SATCHEL_EV_FOLDER_ERROR) {
        con_kv_str(con, "error", ev->text ? ev->text : satchel_strerror(ev->err),
                   "error: %s\n");
        sc->errors++;
    } else {
        con_kv_u64(con, "new", ev->n_new, "%u new, ");
        con_kv_u64(con, "changed", ev->n_changed, "%u changed, ");
        con_kv_u64(con, "vanished", ev->n_vanished, "%u vanished ");
        con_kv_u64(con, "total", ev->total, "(%u total)\n");
    }
    con_kv_item_end(con);
}

static int cmd_sync(satchel_console *con, int argc, char **argv)
{
    satchel_app *app = con->app;
    struct sync_ctx sc = {con, 0};
    int rc;
    if (app->cfg.offline || !app->cfg.host)
        return con_error(con, SATCHEL_E_OFFLINE, "%s",
                         app->cfg.offline ? "offline mode: sync needs the network"
                                          : "no server configured (--server)");
    con_kv_begin(con);
    con_kv_list(con, "folders");
    rc = satchel_app_sync(app, argc > 1 ? argv[1] : NULL, on_event, &sc);
    con_kv_list_end(con);
    con_kv_u64(con, "replayed", app->replayed, NULL);
    con_kv_u64(con, "replay_failed", app->replay_failed, NULL);
    if (rc < 0)
        con_kv_str(con, NULL, app->last_error, "error: %s\n");
    con_kv_str(con, NULL, rc == 0 ? "done" : "failed", "sync %s: ");
    con_kv_u64(con, "bytes_in", app->last.bytes_in, "%u bytes in, ");
    con_kv_u64(con, "bytes_out", app->last.bytes_out, "%u bytes out, ");
    con_kv_u64(con, "round_trips", app->last.round_trips, "%u round trips\n");
    con_kv_u64(con, "commands", app->last.commands, NULL);
    con_kv_bool(con, "ok", rc == 0, NULL);
    if (rc < 0) {
        con_kv_str(con, "error", app->last_error, NULL);
        con_kv_i64(con, "code", rc, NULL);
    }
    con_kv_end(con);
    return rc;
}

static int cmd_online(satchel_console *con, int argc, char **argv)
{
    (void)argc;
    if (argv[0][1] == 'n' && !con->app->cfg.host)
        return con_error(con, SATCHEL_E_INVAL, "no server configured (--server)");
    con->app->cfg.offline = argv[0][1] != 'n';
    if (con->app->cfg.offline) {
        con_kv_begin(con);
        con_kv_bool(con, "ok", 1, NULL);
        con_kv_str(con, "action", "offline", "%s: ok\n");
        return con_kv_end(con);
    }
    /* Coming online flushes the queue (and brings the store up to date). */
    return cmd_sync(con, 1, argv);
}

static int cmd_stats(satchel_console *con, int argc, char **argv)
{
    satchel_app *app = con->app;
    satchel_store_stats st;
    (void)argc;
    (void)argv;
    satchel_store_stats_get(app->store, &st);
    con_kv_begin(con);
    con_kv_u64(con, "bytes_in", app->total.bytes_in, "network:  %u bytes in, ");
    con_kv_u64(con, "bytes_out", app->total.bytes_out, "%u bytes out, ");
    con_kv_u64(con, "round_trips", app->total.round_trips, "%u round trips, ");
    con_kv_u64(con, "commands", app->total.commands, "%u commands, ");
    con_kv_u64(con, "syncs", app->syncs, "%u syncs\n");
    con_kv_u64(con, "store_bytes", st.bytes, "store:    %u bytes used of ");
    con_kv_u64(con, "store_map_size", st.map_size, "%u, ");
    con_kv_u64(con, "folders", st.folders, "%u folders, ");
    con_kv_u64(con, "messages", st.messages, "%u messages\n");
    con_kv_u64(con, "heap_now", app->heap ? app->heap->now : 0,
               app->heap ? "heap:     %u bytes now, " : NULL);
    con_kv_u64(con, "heap_peak", app->heap ? app->heap->peak : 0,
               app->heap ? "%u peak\n" : NULL);
    return con_kv_end(con);
}

const satchel_console_cmd satchel_console_cmds_session[] = {
    {"status", "status", "connection, store and last sync", 0, 0, cmd_status},
    {"sync", "sync [FOLDER]", "fetch new headers and changes from the server",
     0, 1, cmd_sync},
    {"online", "online", "use the network again: replay the queue and sync", 0, 0,
     cmd_online},
    {"offline", "offline", "stop using the network; changes are queued", 0, 0,
     cmd_online},
    {"stats", "stats", "traffic, round trips, store size, heap", 0, 0, cmd_stats},
    {NULL, NULL, NULL, 0, 0, NULL},
};
