"""Header sync end to end against a real Dovecot, in three capability
profiles (QRESYNC, CONDSTORE only, neither).

For each profile: initial sync, then a second client changes flags,
expunges, moves, delivers mail and recreates a folder (new UIDVALIDITY)
between syncs; after every sync the local store must equal what an
independent client (Python's imaplib) reads from the server, message by
message.  The final local state must be the same in all three profiles.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402


check = st.Checks()


def local_state(db, folder):
    r = st.run_sim_offline(db, ["list %s 0 100000" % st.imap_quote(folder)])
    return {m["uid"]: m for m in r.json[0]["messages"]}, r.json[0]["total"]


def compare_folder(dc, db, folder, label):
    """The store's view of folder must equal the server's, message by message."""
    server = dc.server_state("alice", folder)
    local, total = local_state(db, folder)
    return st.compare_messages(check, server, local, total, folder, label)


def sync(dc, db, cmd="sync"):
    r = st.run_sim(dc, db, [cmd])
    out = r.json[0]
    check(out["ok"] is True, "sync ok: %s" % out)
    return out, {f["name"]: f for f in out["folders"]}


def scenario(profile, workdir):
    label = "[%s]" % profile
    db = os.path.join(workdir, "db-" + profile)
    big = (b"From: Big Sender <big@example.org>\r\nTo: alice@example.org\r\n"
           b"Subject: a large message\r\nMessage-ID: <big@example.org>\r\n"
           b"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\n" +
           (b"BODYBYTES " * 100 + b"\r\n") * 2000)  # 2 MB of body
    with st.Dovecot(profile=profile) as dc:
        dc.load_mailset()
        dc.add_messages("alice", "INBOX", [big])
        dc.create_folder("alice", "Old")
        dc.add_messages("alice", "Old", st.load_mailset()["INBOX"][:2])
        folders = [name for name, attrs in dc.folders("alice", all_attrs=True).items()
                   if "\\noselect" not in [a.lower() for a in attrs]]

        # 1. Initial sync: every folder, headers only.
        mark = dc.log_mark()
        out, per = sync(dc, db)
        dc.wait_sessions_logged()
        sessions = dc.session_bytes("alice", since=mark)
        server_out = sum(s["out"] for s in sessions)
        check(server_out < 1_000_000,
              "%s headers only: server sent %d bytes for a store holding a 2 MB body"
              % (label, server_out))
        check(out["bytes_in"] < 1_000_000, "%s bytes_in %d" % (label, out["bytes_in"]))
        for f in folders:
            check(f in per, "%s sync reports folder %s" % (label, f))
            compare_folder(dc, db, f, label + " initial")
        roles = {f["name"]: f["role"] for f in
                 st.run_sim_offline(db, ["folders"]).json[0]["folders"]}
        check(roles.get("INBOX") == "inbox" and roles.get("Sent") == "sent" and
              roles.get("Trash") == "trash" and roles.get("Junk") == "junk" and
              roles.get("Archive") == "archive" and roles.get("Drafts") == "drafts",
              "%s special-use roles: %s" % (label, roles))

        # 2. No change: nothing new, changed or vanished.  The reconnect
        # resumes the TLS session saved in the store.
        r = st.run_sim(dc, db, ["sync INBOX", "status"])
        check(r.json[1]["tls"]["resumed"] is True and r.json[1]["tls"]["version"] == "TLSv1.2",
              "%s TLS session resumed on reconnect: %s" % (label, r.json[1]["tls"]))
        out, per = sync(dc, db)
        check(all(f["new"] == 0 and f["changed"] == 0 and f["vanished"] == 0
                  for f in per.values()), "%s no-change resync: %s" % (label, per))

        # 3. A second client changes the mailbox between syncs.
        before = dc.server_state("alice", "INBOX")
        inbox = sorted(before)
        dc.store_flags("alice", "INBOX", inbox[0:5], "+", ["\\Flagged", "$Forwarded"])
        dc.store_flags("alice", "INBOX", inbox[5:10], "-", ["\\Seen"])
        dc.store_flags("alice", "INBOX", inbox[10:15], "+", ["\\Seen", "\\Answered"])
        dc.expunge("alice", "INBOX", inbox[20:23] + [inbox[-2]])
        dc.move("alice", "INBOX", inbox[30:33], "Archive")
        newmsg = (b"From: =?UTF-8?Q?Ren=C3=A9e?= <renee@example.org>\r\n"
                  b"Subject: =?ISO-8859-1?Q?caf=E9?= delivered live\r\n"
                  b"Message-ID: <live-1@example.org>\r\n"
                  b"Date: Sun, 22 Nov 2026 09:00:00 +0100\r\n\r\nhello\r\n")
        dc.append("alice", "INBOX", newmsg, flags=())
        dc.append("alice", "Lists/Dev", newmsg.replace(b"live-1", b"live-2"),
                  flags=("\\Seen",))
        after = dc.server_state("alice", "INBOX")
        changed = sum(1 for u in after if u in before and
                      after[u]["flags"] != before[u]["flags"])
        out, per = sync(dc, db)
        check(per["INBOX"]["new"] == 1 and per["INBOX"]["vanished"] == 7 and
              per["INBOX"]["changed"] == changed and changed >= 10,
              "%s INBOX counts after changes: %s" % (label, per["INBOX"]))
        check(per["Archive"]["new"] == 3, "%s Archive got moved mail: %s" % (
            label, per["Archive"]))
        for f in folders:
            compare_folder(dc, db, f, label + " after changes")
        local, _ = local_state(db, "INBOX")
        live = [m for m in local.values() if "delivered live" in m["subject"]]
        check(len(live) == 1 and live[0]["subject"] == "café delivered live" and
              live[0]["from"].startswith("Renée"),
              "%s RFC 2047 decoding of a live delivery: %s" % (label, live))

        # 4. UIDVALIDITY change: the folder is recreated on the server.
        old = dc.server_state("alice", "Lists/Dev")
        dc.delete_folder("alice", "Lists/Dev")
        dc.create_folder("alice", "Lists/Dev")
        dc.add_messages("alice", "Lists/Dev", st.load_mailset()["INBOX"][:5])
        new = dc.server_state("alice", "Lists/Dev")
        check(new.uidvalidity != old.uidvalidity, "%s uidvalidity changed" % label)
        out, per = sync(dc, db)
        check(per["Lists/Dev"]["vanished"] == len(old) and per["Lists/Dev"]["new"] == 5,
              "%s uidvalidity change drops the old cache: %s" % (label, per["Lists/Dev"]))
        compare_folder(dc, db, "Lists/Dev", label + " after uidvalidity change")
        info = {f["name"]: f for f in st.run_sim_offline(db, ["folders"]).json[0]["folders"]}
        check(info["Lists/Dev"]["uidvalidity"] == new.uidvalidity,
              "%s stored uidvalidity" % label)

        # 5. A folder deleted on the server disappears locally; a single
        # folder sync touches only that folder.
        dc.delete_folder("alice", "Old")
        out, per = sync(dc, db)
        check("Old" not in per, "%s deleted folder not synced" % label)
        r = st.run_sim_offline(db, ["folders"])
        check("Old" not in [f["name"] for f in r.json[0]["folders"]],
              "%s deleted folder dropped from the store" % label)
        dc.store_flags("alice", "INBOX", inbox[40:42], "+", ["\\Deleted"])
        out, per = sync(dc, db, "sync INBOX")
        check(list(per) == ["INBOX"] and per["INBOX"]["changed"] == 2,
              "%s sync INBOX: %s" % (label, per))
        compare_folder(dc, db, "INBOX", label + " single folder")

        final = {}
        for f in folders:
            if f != "Old":
                final[f] = local_state(db, f)[0]
    # 6. The store survives restart and reads offline with no server at all.
    r = st.run_sim_offline(db, ["status", "folders", "list INBOX 0 3", "show INBOX 1"])
    check(r.returncode == 0 and r.json[0]["online"] is False and
          len(r.json[2]["messages"]) == 3 and r.json[3]["uid"] == 1,
          "%s offline read after restart: %s" % (label, r.stdout[:300]))
    r = st.run_sim_offline(db, ["sync"], check=False)
    check(r.returncode != 0 and r.json[0]["ok"] is False,
          "%s sync offline fails clearly: %s" % (label, r.stdout))
    return final


def main():
    with tempfile.TemporaryDirectory(prefix="satchel-test-sync-") as work:
        finals = {}
        for profile in ("full", "condstore", "none"):
            finals[profile] = scenario(profile, work)
        ref = finals["full"]
        for profile in ("condstore", "none"):
            same = finals[profile] == ref
            if not same:
                for f in ref:
                    if finals[profile].get(f) != ref[f]:
                        print("  %s differs from full in %s" % (profile, f))
            check(same, "final local state of profile %s equals full" % profile)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())
