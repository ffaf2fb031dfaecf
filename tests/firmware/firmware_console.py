#!/usr/bin/env python3
"""firmware_console: both images boot under QEMU, and the console on UART0
answers: the simulator's command table, JSON mode, the line editor
(backspace, overlong lines), errors, offline commands on an empty store."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fwlib  # noqa: E402

check = fwlib.st.Checks()


def sim_commands():
    """Command names in satchel-sim's help (the same table)."""
    sim = os.environ.get("SATCHEL_SIM") or fwlib.st.satchel_sim_path()
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sim, "--db", d, "--offline", "-c", "help"],
                             capture_output=True, text=True, timeout=60).stdout
    return [l.split()[0] for l in out.splitlines() if l.strip()]


def main():
    tmp = tempfile.mkdtemp(prefix="satchel-fw-console-")
    with fwlib.Device(os.path.join(tmp, "an386")) as dev:
        check(b"mps2-an386" in dev.boot_log, "boot banner names the board")
        names = [l.split()[0] for l in dev.cmd("help").splitlines() if l.strip()]
        check(names == sim_commands(), "help lists the simulator's table: %s" % names)
        # Line editor: backspace erases, then the line runs.
        out = dev.cmd("hepl\x7f\x7flp")
        check("list commands" in out, "backspace edits the line: %r" % out[:80])
        out = dev.cmd("stats\x08\x08\x08\x08\x08folders")
        check("error" not in out, "BS (0x08) edits too: %r" % out[:80])
        out = dev.cmd("x" * 1100)
        check("longer than 1023 bytes" in out and "none of it ran" in out, "an overlong line is rejected: %r" % out)
        out = dev.cmd("status")
        check("store:" in out and "satchel.db" in out, "status after the overlong line: %r" % out)
        out = dev.cmd("frobnicate")
        check(out.startswith("error"), "unknown command is an error: %r" % out)
        # JSON mode: one object per command.
        r = dev.jcmd("status")
        check(r.get("stack") == "lwip" and "folders" in r, "status in JSON: %s" % r)
        r = dev.jcmd("folders")
        check(r.get("folders") == [], "empty store: no folders: %s" % r)
        r = dev.jcmd("list INBOX")
        check(r.get("ok") is False and r.get("error"), "list of a missing folder: %s" % r)
        r = dev.jcmd("cache")
        check("budget" in r, "cache in JSON: %s" % r)
        r = dev.jcmd("x" * 1100)
        check(r.get("ok") is False and "longer than" in r.get("error", ""),
              "overlong line in JSON mode: %s" % r)
        r = dev.jcmd("mem")
        check(r.get("heap_high_water", 0) > 0 and r.get("stack_high_water", 0) > 0,
              "board memory figures: %s" % r)
        r = dev.jcmd("tls-handshake")
        check(r.get("ok") is False and "no server" in r.get("error", ""),
              "tls-handshake without a server: %s" % r)
        out = dev.cmd("json off")
        check("off" in out, "json off: %r" % out)
        check("store:" in dev.cmd("status"), "text mode again")
    check(os.path.isfile(os.path.join(tmp, "an386", "satchel.db")),
          "the store file is in the working directory")
    with fwlib.Device(os.path.join(tmp, "an500"), board="mps2-an500") as dev:
        check(b"mps2-an500" in dev.boot_log, "AN500 boots")
        r = dev.jcmd("status")
        check("folders" in r, "AN500 console answers: %s" % r)
        r = dev.jcmd("mkdir Notes")
        check(r.get("ok") is not False, "AN500 store takes a change: %s" % r)
        r = dev.jcmd("folders")
        check([f["name"] for f in r.get("folders", [])] == ["Notes"],
              "AN500 folder listed: %s" % r)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())
