"""Drive the firmware image under QEMU from a test: boot it in a working
directory (satchel.cfg, satchel.db), talk to its console on UART0 through
QEMU's stdio, kill it, boot it again.

    with Device(workdir) as dev:
        dev.cmd("sync")          # text output of one command
        dev.jcmd("list INBOX")   # the JSON object (the console in JSON mode)

The image comes from $SATCHEL_FW_DIR (default build-fw/ of the checkout),
built by `scripts/firmware build`.
"""
import json
import os
import select
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import satchel_test as st  # noqa: E402

PROMPT = b"satchel> "
FW_DIR = os.environ.get("SATCHEL_FW_DIR", os.path.join(ROOT, "build-fw"))
BOARDS = {"mps2-an386": "satchel-fw.elf", "mps2-an500": "satchel-fw-an500.elf"}


class DeviceError(RuntimeError):
    pass


def image(board="mps2-an386"):
    path = os.path.join(FW_DIR, BOARDS[board])
    if not os.path.isfile(path):
        raise DeviceError("no firmware image %s (run scripts/firmware build)" % path)
    return path


def qemu_command(board="mps2-an386", icount=False):
    """The plain qemu-system-arm command line (run in the working dir)."""
    cmd = ["qemu-system-arm", "-M", board, "-nographic", "-monitor", "none",
           "-serial", "stdio", "-semihosting-config", "enable=on,target=native",
           "-nic", "user,model=lan9118", "-kernel", image(board)]
    if icount:
        cmd += ["-icount", "shift=5"]
    return cmd


def write_config(workdir, dc=None, port=None, offline=False, extra=(), host="127.0.0.1"):
    """satchel.cfg for the Dovecot dc (its implicit-TLS port unless port is
    given), user alice, the password in a 0600 file."""
    os.makedirs(workdir, exist_ok=True)
    lines = []
    if dc is not None:
        pw = os.path.join(workdir, "password")
        with open(pw, "w") as f:
            f.write(dc.users["alice"] + "\n")
        os.chmod(pw, 0o600)
        lines += ["server %s:%d" % (host, port or dc.imaps_port),
                  "security tls", "ca %s" % dc.ca_file, "user alice",
                  "password-file password", "timeout 20000", "retries 4"]
    if offline:
        lines.append("offline 1")
    lines += list(extra)
    with open(os.path.join(workdir, "satchel.cfg"), "w") as f:
        f.write("\n".join(lines) + "\n")


class Device:
    def __init__(self, workdir, board="mps2-an386", icount=False, boot_timeout=30):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.board = board
        self.out = b""
        self.boot_log = b""
        self.proc = subprocess.Popen(
            qemu_command(board, icount), cwd=workdir, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=st._pdeathsig_preexec)
        self.boot_log = self._until(PROMPT, boot_timeout)
        self.json = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False

    def _read_some(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return False
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            raise DeviceError("QEMU exited (%s); output so far: %r" % (
                self.proc.poll(), self.out[-2000:]))
        self.out += data
        return True

    def _until(self, marker, timeout):
        deadline = time.time() + timeout
        while marker not in self.out:
            left = deadline - time.time()
            if left <= 0 or not self._read_some(left):
                if marker in self.out:
                    break
                raise DeviceError("timed out waiting for %r; output: %r" % (
                    marker, self.out[-2000:]))
        i = self.out.index(marker) + len(marker)
        got, self.out = self.out[:i], self.out[i:]
        return got

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def cmd(self, line, timeout=300):
        """Run one command line; returns its output (text, without the
        echoed line and the next prompt)."""
        self.send(line.encode() + b"\r")
        got = self._until(b"\r\n" + PROMPT, timeout)
        text = got[:-len(b"\r\n" + PROMPT)].decode("utf-8", "replace")
        first, _, rest = text.partition("\r\n")
        return rest.replace("\r\n", "\n")

    def jcmd(self, line, timeout=300):
        """Run one command in JSON mode; returns the parsed object."""
        if not self.json:
            self.cmd("json on")
            self.json = True
        out = self.cmd(line, timeout).strip()
        try:
            return json.loads(out)
        except ValueError:
            raise DeviceError("%s: not one JSON object: %r" % (line, out[:500]))

    def kill(self):
        """SIGKILL, as a power cut is to a device (the host file keeps every
        write that completed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


def local_state(dev, folder):
    r = dev.jcmd("list %s 0 100000" % st.imap_quote(folder))
    return {m["uid"]: m for m in r["messages"]}, r["total"]


def compare_folder(check, dc, dev, folder, label):
    """The device's store must equal the server's (imaplib), message by
    message: UIDs, flags, sizes, subjects, senders."""
    server = dc.server_state("alice", folder)
    local, total = local_state(dev, folder)
    return st.compare_messages(check, server, local, total, folder, label)


def server_folders(dc):
    """Selectable folders on the server."""
    return sorted(n for n, attrs in dc.folders("alice", all_attrs=True).items()
                  if "\\noselect" not in [a.lower() for a in attrs] and
                  "\\nonexistent" not in [a.lower() for a in attrs])
