/* The console's command table and dispatcher (Zephyr shell style: static
 * tables, one per command group, each in its own file), the line tokenizer,
 * and helpers the groups share. */
#include <stdlib.h>
#include <string.h>

#include "console_int.h"

#define MAX_ARGS 8

int con_parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;
    if (!*s || *s < '0' || *s > '9')
        return -1;
    v = strtoul(s, &end, 10);
    if (*end || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* INBOX is case-insensitive (RFC 9051 5.1): "inbox" finds the folder the
 * server lists as "Inbox", whatever case it was stored in. */
static int is_inbox(const char *name)
{
    return satchel_ascii_ieq(name, strlen(name), "INBOX");
}

/* The stored spelling of INBOX ("Inbox" when the server lists it so) into
 * con->inbox; 0, or -1 when the store has none. */
static int find_inbox(satchel_console *con)
{
    static const char *const common[] = {"INBOX", "Inbox", "inbox"};
    satchel_folder *f = &con->app->scratch_folder;
    char after[SATCHEL_OPT_MAX_FOLDER_NAME + 1] = "";
    size_t i;
    int rc;
    for (i = 0; i < 3; i++)
        if (satchel_store_folder_get(con->app->store, NULL, common[i], f) == 0)
            goto found;
    while ((rc = satchel_store_folder_next(con->app->store, NULL, after, f)) == 0) {
        if (is_inbox(f->name))
            goto found;
        memcpy(after, f->name, sizeof after);
    }
    return -1;
found:
    memcpy(con->inbox, f->name, 6);
    return 0;
}

int con_get_folder(satchel_console *con, const char *name, satchel_folder *f)
{
    int rc = satchel_store_folder_get(con->app->store, NULL, name, f);
    if (rc == SATCHEL_E_NOTFOUND && is_inbox(name) && find_inbox(con) == 0)
        rc = satchel_store_folder_get(con->app->store, NULL, con->inbox, f);
    if (rc == SATCHEL_E_NOTFOUND)
        return con_error(con, rc, "no such folder: %s (run sync first?)", name);
    if (rc < 0)
        return con_error(con, rc, "cannot read folder %s: %s", name,
                         satchel_strerror(rc));
    return 0;
}

static int cmd_help(satchel_console *con, int argc, char **argv)
{
    const satchel_console_cmd *const *g;
    const satchel_console_cmd *c;
    (void)argc;
    (void)argv;
    con_kv_begin(con);
    con_kv_list(con, "commands");
    for (g = satchel_console_groups; *g; g++) {
        for (c = *g; c->name; c++) {
            con_kv_item(con);
            con_kv_str(con, "name", c->name, NULL);
            con_kv_str(con, "usage", c->usage, "  %-28s ");
            con_kv_str(con, "help", c->help, "%s\n");
            con_kv_item_end(con);
        }
    }
    con_kv_list_end(con);
    return con_kv_end(con);
}

static const satchel_console_cmd cmds_core[] = {
    {"help", "help", "list commands", 0, 0, cmd_help},
    {NULL, NULL, NULL, 0, 0, NULL},
};

const satchel_console_cmd *const satchel_console_groups[] = {
    cmds_core,
    satchel_console_cmds_session,
    satchel_console_cmds_mail,
    satchel_console_cmds_changes,
    satchel_console_cmds_store,
    NULL,
};

/* Split on blanks; double quotes group (with \" and \\ escapes). */
static int tokenize(char *s, char **argv, int max)
{
    int argc = 0;
    while (*s) {
        char *o;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        if (!*s)
            break;
        if (argc == max)
            return -1;
        argv[argc++] = o = s;
        if (*s == '"') {
            s++;
            while (*s && *s != '"') {
                if (*s == '\\' && s[1])
                    s++;
                *o++ = *s++;
            }
            if (*s != '"')
                return -1;
            s++;
            if (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
                return -1;
        } else {
            while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
                *o++ = *s++;
        }
        if (*s)
            s++;
        *o = '\0';
    }
    return argc;
}

void satchel_console_init(satchel_console *con, satchel_app *app,
                          const satchel_console_io *io, int json)
{
    memset(con, 0, sizeof *con);
    con->app = app;
    con->io = *io;
    con->json = json;
}

void satchel_console_set_files(satchel_console *con, const satchel_console_files *f)
{
    con->files = f;
}

static const satchel_console_cmd *find(const char *name)
{
    const satchel_console_cmd *const *g;
    const satchel_console_cmd *c;
    for (g = satchel_console_groups; *g; g++)
        for (c = *g; c->name; c++)
            if (strcmp(c->name, name) == 0)
                return c;
    return NULL;
}

int satchel_console_exec(satchel_console *con, const char *line)
{
    char buf[SATCHEL_CONSOLE_LINE_MAX + 1];
    char *argv[MAX_ARGS];
    const satchel_console_cmd *c;
    size_t n = strlen(line);
    int argc, i;
    con->kv_wrote = 0;
    if (n > SATCHEL_CONSOLE_LINE_MAX)
        return con_error(con, SATCHEL_E_INVAL,
                         "command line too long (%zu bytes, at most %u)", n,
                         SATCHEL_CONSOLE_LINE_MAX);
    memcpy(buf, line, n + 1);
    argc = tokenize(buf, argv, MAX_ARGS);
    if (argc < 0)
        return con_error(con, SATCHEL_E_INVAL,
                         "cannot parse command (unclosed quote or too many "
                         "arguments)");
    if (argc == 0)
        return 0;
    c = find(argv[0]);
    if (!c)
        return con_error(con, SATCHEL_E_INVAL, "unknown command '%s' (try help)",
                         argv[0]);
    if (argc - 1 < c->min_args || argc - 1 > c->max_args)
        return con_error(con, SATCHEL_E_INVAL, "usage: %s", c->usage);
    con->damaged_mark = con->app->store ? satchel_store_damaged(con->app->store) : 0;
    /* INBOX is case-insensitive (RFC 9051 5.1): any spelling of it names
     * the folder whatever case the server listed it in. */
    for (i = 1; i < argc; i++)
        if (is_inbox(argv[i]) && con->app->store && find_inbox(con) == 0)
            argv[i] = con->inbox;
    return c->fn(con, argc, argv);
}

int satchel_console_run_script(satchel_console *con, const char *script)
{
    char cmd[SATCHEL_CONSOLE_LINE_MAX + 1];
    int first_rc = 0;
    while (*script) {
        size_t n = 0;
        int inq = 0, rc;
        while (script[n] && (inq || script[n] != ';')) {
            if (script[n] == '"')
                inq = !inq;
            else if (script[n] == '\\' && inq && script[n + 1])
                n++;
            n++;
        }
        if (n >= sizeof cmd) {
            con->kv_wrote = 0;
            rc = con_error(con, SATCHEL_E_INVAL,
                           "command line too long (%zu bytes, at most %u)", n,
                           SATCHEL_CONSOLE_LINE_MAX);
        } else {
            memcpy(cmd, script, n);
            cmd[n] = '\0';
            rc = satchel_console_exec(con, cmd);
        }
        if (rc < 0 && first_rc == 0)
            first_rc = rc;
        script += n;
        if (*script == ';')
            script++;
    }
    return first_rc;
}

/* The line in r ended (at a newline, or the end of input): hand it out,
 * without its CR, or say it was dropped for its length. */
static int line_end(satchel_console_reader *r, const char **line, int at_eof)
{
    int over = r->overlong;
    r->overlong = 0;
    if (r->len && r->buf[r->len - 1] == '\r')
        r->len--;
    if (over || (at_eof && r->len == 0)) {
        r->len = 0;
        return over ? SATCHEL_E_RANGE : 0;
    }
    r->buf[r->len] = '\0';
    r->len = 0;
    *line = r->buf;
    return 1;
}

int satchel_console_reader_feed(satchel_console_reader *r, const char *data,
                                size_t n, size_t *used, const char **line)
{
    size_t i;
    if (n == 0) {
        *used = 0;
        return line_end(r, line, 1);
    }
    for (i = 0; i < n; i++) {
        char c = data[i];
        if (c == '\n') {
            *used = i + 1;
            return line_end(r, line, 0);
        }
        if (r->overlong)
            continue;
        /* One byte over the limit is kept while it may be the CR of a
         * CR LF. */
        if (r->len > SATCHEL_CONSOLE_LINE_MAX ||
            (r->len == SATCHEL_CONSOLE_LINE_MAX && c != '\r')) {
            r->overlong = 1;
            continue;
        }
        r->buf[r->len++] = c;
    }
    *used = n;
    return 0;
}

int satchel_console_reject_line(satchel_console *con)
{
    con->kv_wrote = 0;
    return con_error(con, SATCHEL_E_RANGE,
                     "command line longer than %u bytes: ignored whole, none of it "
                     "ran", SATCHEL_CONSOLE_LINE_MAX);
}

int satchel_console_error(satchel_console *con, int rc, const char *text)
{
    con->kv_wrote = 0;
    return con_error(con, rc, "%s", text);
}

int satchel_console_is_quit(const char *line)
{
    size_t n;
    while (*line == ' ' || *line == '\t' || *line == '\r' || *line == '\n')
        line++;
    n = strcspn(line, " \t\r\n");
    if (!((n == 4 && memcmp(line, "quit", 4) == 0) ||
          (n == 4 && memcmp(line, "exit", 4) == 0)))
        return 0;
    line += n;
    while (*line == ' ' || *line == '\t' || *line == '\r' || *line == '\n')
        line++;
    return *line == '\0';
}
