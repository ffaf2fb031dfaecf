#!/usr/bin/env python3
"""firmware_sync: the image under QEMU against the test Dovecot over TLS
through the emulated LAN9118.  Sync, list, show, body, flag, move, the
offline queue and its replay, a reboot read offline, a cut link, and a
storage write failed on purpose.  After each step the device's store is
compared with what imaplib reads from the server."""
import email
import email.policy
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fwlib  # noqa: E402

st = fwlib.st
check = st.Checks()


def compare_all(dc, dev, label):
    for folder in fwlib.server_folders(dc):
        fwlib.compare_folder(check, dc, dev, folder, label)


def sync_ok(dev, label, cmd="sync"):
    r = dev.jcmd(cmd, timeout=600)
    check(r.get("ok") is True, "%s: %s ok: %s" % (label, cmd, str(r)[:300]))
    return r


def text_plain_uid(dc, folder):
    """A single-part text/plain message and its decoded text (imaplib)."""
    state = dc.server_state("alice", folder)
    for uid in sorted(state):
        raw = dc.fetch_raw("alice", folder, uid)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg.is_multipart() or msg.get_content_type() != "text/plain":
            continue
        cs = (msg.get_content_charset() or "us-ascii").lower()
        if cs not in ("us-ascii", "utf-8", "iso-8859-1"):
            continue
        try:
            return uid, msg.get_content()
        except (LookupError, ValueError):
            continue
    return None, None


def by_message_id(dc, folder):
    st_ = dc.server_state("alice", folder)
    return {v["message_id"]: uid for uid, v in st_.items()}


def main():
    tmp = tempfile.mkdtemp(prefix="satchel-fw-sync-")
    with st.Dovecot() as dc:
        counts = dc.load_mailset("alice")
        work = os.path.join(tmp, "dev")
        fwlib.write_config(work, dc)
        with fwlib.Device(work) as dev:
            r = sync_ok(dev, "initial")
            names = sorted(f["name"] for f in r.get("folders", []))
            check(names == fwlib.server_folders(dc), "synced folders %s" % names)
            check(sum(f["total"] for f in r["folders"]) == sum(counts.values()),
                  "message total %s vs %s" % (
                      sum(f["total"] for f in r["folders"]), sum(counts.values())))
            compare_all(dc, dev, "initial")
            # The device stays logged in between commands: a resync is one
            # round trip in the open session (no greeting, TLS or login).
            r2 = sync_ok(dev, "resync")
            check(r2.get("round_trips") == 1 and r2.get("bytes_in", 1 << 30) < 2000,
                  "resync in the kept session: %s round trips, %s bytes in" % (
                      r2.get("round_trips"), r2.get("bytes_in")))
            check(len(dc.open_sessions()) >= 1, "the device's session is still open")
            h = dev.jcmd("tls-handshake")
            check(h.get("ok") is True and h.get("version") == "TLSv1.2",
                  "a timed full handshake: %s" % h)
            m = dev.jcmd("mem")
            check(m.get("ip") == "10.0.2.15" and m.get("storage_writes", 0) > 0,
                  "DHCP address and storage writes: %s" % m)
            st_ = dev.jcmd("status")
            check(st_["tls"]["version"] == "TLSv1.2", "status shows TLS 1.2: %s" % st_)

            # show and body, against imaplib.
            uid, text = text_plain_uid(dc, "INBOX")
            check(uid is not None, "a text/plain message in INBOX")
            s = dev.jcmd("show INBOX %d" % uid)
            server = dc.server_state("alice", "INBOX")[uid]
            check(st.norm_space(s.get("subject")) == st.norm_space(server["subject"])
                  or "=?" in str(s),
                  "show subject %r vs %r" % (s.get("subject"), server["subject"]))
            b = dev.jcmd("body INBOX %d" % uid)
            check(st.norm_space(b.get("text")) == st.norm_space(text),
                  "body text equals imaplib's (%d vs %d chars)" % (
                      len(b.get("text") or ""), len(text or "")))

            # flag and move online (queued, replayed by the next sync).
            inbox = sorted(dc.server_state("alice", "INBOX"))
            f_uid, m_uid = inbox[0], inbox[1]
            mid = dc.server_state("alice", "INBOX")[m_uid]["message_id"]
            r = dev.jcmd("flag INBOX %d +\\Flagged" % f_uid)
            check(r.get("ok") is not False, "flag: %s" % r)
            r = dev.jcmd("move INBOX %d Archive" % m_uid)
            check(r.get("ok") is not False, "move: %s" % r)
            sync_ok(dev, "replay")
            check("\\Flagged" in dc.server_state("alice", "INBOX")[f_uid]["flags"],
                  "the flag reached the server")
            check(mid in by_message_id(dc, "Archive") and
                  mid not in by_message_id(dc, "INBOX"), "the move reached the server")
            compare_all(dc, dev, "after replay")

            # offline: changes wait in the queue; online replays them.
            r = dev.jcmd("offline")
            check(r.get("ok") is not False, "offline: %s" % r)
            o_uid, o2_uid = inbox[2], inbox[3]
            mid2 = dc.server_state("alice", "INBOX")[o2_uid]["message_id"]
            dev.jcmd("flag INBOX %d +\\Seen +$Forwarded" % o_uid)
            dev.jcmd("move INBOX %d Junk" % o2_uid)
            q = dev.jcmd("queue")
            check(q.get("pending", 0) >= 2, "queue holds the offline changes: %s" % str(q)[:300])
            r = dev.jcmd("sync")
            check(r.get("ok") is False, "sync refused while offline: %s" % str(r)[:200])
            check(mid2 in by_message_id(dc, "INBOX"), "offline: the server is untouched")
            sync_ok(dev, "online", "online")
            flags = dc.server_state("alice", "INBOX")[o_uid]["flags"]
            check("\\Seen" in flags and "$Forwarded" in flags,
                  "offline flags replayed: %s" % flags)
            check(mid2 in by_message_id(dc, "Junk"), "offline move replayed")
            q = dev.jcmd("queue")
            check(q.get("pending") == 0 and q.get("failed") == 0,
                  "queue empty after replay: %s" % str(q)[:300])
            compare_all(dc, dev, "after online")

            # Every command of the table answers over the UART with one
            # JSON object: these must succeed ...
            inbox = sorted(dc.server_state("alice", "INBOX"))
            a, b_, c, d = inbox[4], inbox[5], inbox[6], inbox[7]
            for line in ["help", "status", "folders", "list INBOX 0 5", "list Archive",
                         "show INBOX %d" % a, "parts INBOX %d" % a, "body INBOX %d" % a,
                         "body INBOX %d --raw" % a, "cache", "cache pin INBOX %d" % a,
                         "cache unpin INBOX %d" % a, "cache evict INBOX %d" % a,
                         "cache evict", "flag INBOX %d +\\Answered -\\Seen" % b_,
                         "move INBOX %d Lists/Dev" % c, "delete INBOX %d" % d,
                         "mkdir Projects", "queue", "stats", "store check", "sync INBOX",
                         "offline", "online"]:
                r = dev.jcmd(line)
                check(r.get("ok") is not False, "%s: %s" % (line, str(r)[:200]))
            # ... and these fail cleanly, with a reason.
            for line in ["show INBOX 999999", "list NoSuchFolder", "queue retry 999999",
                         "flag INBOX %d +Bogus\\" % a, "move INBOX 999999 Archive",
                         "body INBOX %d --out /nonexistent/x" % a]:
                r = dev.jcmd(line)
                check(r.get("ok") is False and r.get("error"), "%s: %s" % (line, str(r)[:200]))
            sync_ok(dev, "after the command sweep")
            compare_all(dc, dev, "after the command sweep")
            dev.jcmd("body INBOX %d" % uid)  # cached again for the offline read
            before = {f: fwlib.local_state(dev, f) for f in fwlib.server_folders(dc)}

        # Reboot, offline: the store survives and reads the same.
        fwlib.write_config(work, dc, offline=True)
        with fwlib.Device(work) as dev:
            after = {f: fwlib.local_state(dev, f) for f in fwlib.server_folders(dc)}
            check(after == before, "after a reboot the store reads the same offline")
            b = dev.jcmd("body INBOX %d" % uid)
            check(st.norm_space(b.get("text")) == st.norm_space(text),
                  "cached body read offline after reboot")
            r = dev.jcmd("sync")
            check(r.get("ok") is False, "offline from satchel.cfg: no network")

        # A cut link: the first connection is cut mid-sync, the device
        # reconnects and resumes.  The server is named "localhost" here.
        relay = st.CutRelay(dc.imaps_port, cut=60000, times=1)
        cut_dir = os.path.join(tmp, "cut")
        fwlib.write_config(cut_dir, dc, port=relay.port, host="localhost")
        with fwlib.Device(cut_dir) as dev:
            sync_ok(dev, "cut link")
            check(relay.cuts >= 1 and relay.conns >= 2,
                  "the link was cut and the device reconnected (%d cuts, %d connections)"
                  % (relay.cuts, relay.conns))
            compare_all(dc, dev, "after the cut")
        relay.close()

        # The kept session dropped while the device is idle (a server's
        # autologout, a NAT timeout): the device notices, and the next
        # command opens a new session and completes.
        relay = st.Relay(dc.imaps_port)
        drop_dir = os.path.join(tmp, "drop")
        fwlib.write_config(drop_dir, dc, port=relay.port)
        with fwlib.Device(drop_dir) as dev:
            sync_ok(dev, "before the drop")
            relay.drop_all()
            time.sleep(1.0)
            r = sync_ok(dev, "after the drop")
            check(relay.conns == 2 and r.get("round_trips", 0) > 1,
                  "a new session after the drop (%d connections, %s round trips)" % (
                      relay.conns, r.get("round_trips")))
            relay.drop_all()
            r = sync_ok(dev, "dropped just before the command")
            check(relay.conns == 3, "a new session again (%d connections)" % relay.conns)
            compare_all(dc, dev, "after the drops")
        relay.close()

        # The second board (Cortex-M7, the LAN9118 at another address)
        # syncs the same account.
        an500 = os.path.join(tmp, "an500")
        fwlib.write_config(an500, dc)
        with fwlib.Device(an500, board="mps2-an500") as dev:
            sync_ok(dev, "AN500")
            compare_all(dc, dev, "AN500")

        # The Nth storage write fails (deterministic): the command reports
        # an error or completes; after a reboot the store opens and the
        # next sync converges.
        for nth in (3, 25, 90):
            d = os.path.join(tmp, "fail%d" % nth)
            fwlib.write_config(d, dc, extra=["fail-write %d" % nth])
            with fwlib.Device(d) as dev:
                r = dev.jcmd("sync", timeout=600)
                print("fail-write %d: sync -> %s" % (nth, str(r)[:200]))
            fwlib.write_config(d, dc)
            with fwlib.Device(d) as dev:
                sync_ok(dev, "after failed write %d" % nth)
                compare_all(dc, dev, "fail-write %d" % nth)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())
