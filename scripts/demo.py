"""Demo: a private Dovecot with the sample mail set, one header sync over TLS,
then the same mailbox read back offline."""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import satchel_test as st  # noqa: E402


def sim(args, title):
    print("\n$ satchel-sim " + " ".join(a if " " not in a else '"%s"' % a
                                        for a in args))
    sys.stdout.flush()
    r = subprocess.run([st.satchel_sim_path()] + args)
    if r.returncode != 0:
        sys.exit("demo: %s failed" % title)


def main():
    work = tempfile.mkdtemp(prefix="satchel-demo-")
    db = os.path.join(work, "store")
    try:
        with st.Dovecot(profile="full") as dc:
            counts = dc.load_mailset()
            print("Dovecot %s on 127.0.0.1:%d (TLS), sample mail: %s" % (
                st.dovecot_version(), dc.imaps_port,
                ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
            pw = os.path.join(work, "password")
            fd = os.open(pw, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, dc.users["alice"].encode())
            os.close(fd)
            online = ["--db", db, "--server", "127.0.0.1:%d" % dc.imaps_port,
                      "--security", "tls", "--ca", dc.ca_file, "--user", "alice",
                      "--password-file", pw]
            sim(online + ["-c", "sync; folders; list INBOX 0 15; stats"],
                "online sync")
        print("\n(server stopped: everything below comes from the local store)")
        sim(["--db", db, "--offline", "-c", "status; list Archive 0 5; show INBOX 1"],
            "offline read")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
