#!/usr/bin/env python3
"""firmware_store_host: the device's store (satchel.db, written through the
board's LMDB shim and semihosting) is a plain LMDB file.  LMDB's format
depends on the word size, so the host's 64-bit tools refuse it, and a
32-bit host build of LMDB's own mdb_stat (gcc -m32, from the same
third_party sources) reads it, with the records the device made."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fwlib  # noqa: E402

check = fwlib.st.Checks()


def mdb_stat32(tmp):
    src = sorted(glob.glob(os.path.join(fwlib.ROOT, "third_party", "lmdb-0.9.24*",
                                        "libraries", "liblmdb")))
    if not src:
        raise SystemExit("no LMDB sources in third_party/ (scripts/fetch-firmware)")
    out = os.path.join(tmp, "mdb_stat32")
    p = subprocess.run(["gcc", "-m32", "-O1", "-o", out] +
                       [os.path.join(src[0], f) for f in ("mdb_stat.c", "mdb.c", "midl.c")] +
                       ["-lpthread"], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("gcc -m32 failed (install gcc-multilib: scripts/setup test): %s"
                         % p.stderr[-500:])
    return out


def stat_entries(text):
    """{database: entries} from mdb_stat -a output."""
    out, name = {}, None
    for line in text.splitlines():
        m = re.match(r"Status of (.*)$", line)
        if m:
            name = m.group(1)
        m = re.match(r"\s+Entries: (\d+)", line)
        if m and name:
            out[name] = int(m.group(1))
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="satchel-fw-store-")
    work = os.path.join(tmp, "dev")
    names = ["Projects", "Receipts", "Travel"]
    with fwlib.Device(work) as dev:
        for n in names:
            r = dev.jcmd("mkdir %s" % n)
            check(r.get("ok") is not False, "mkdir %s: %s" % (n, r))
        q = dev.jcmd("queue")
        check(q.get("pending") == 3, "three changes queued: %s" % q)
    db = os.path.join(work, "satchel.db")
    tool = mdb_stat32(tmp)
    p = subprocess.run([tool, "-n", "-a", db], capture_output=True, text=True)
    check(p.returncode == 0, "32-bit mdb_stat reads the device store: %s" % p.stderr)
    entries = stat_entries(p.stdout)
    print("device store databases: %s" % entries)
    check(entries.get("folders") == 3, "three folders in the store: %s" % entries)
    check(entries.get("queue") == 3, "three queue entries in the store: %s" % entries)
    host_tool = shutil.which("mdb_stat")
    if host_tool:
        p = subprocess.run([host_tool, "-n", db], capture_output=True, text=True)
        check(p.returncode != 0 and "MDB_INVALID" in p.stdout + p.stderr,
              "the host's 64-bit mdb_stat refuses it (word size): %s" % (p.stdout + p.stderr))
    shutil.rmtree(tmp, ignore_errors=True)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())
