"""A real OpenSSH server on a free localhost port, for the SSH source tests.

`SshServer(tmp)` writes a host key, a client key, an sshd config
(authorized keys, pid file, no PAM, keys only) and a HOME for the client with
~/.ssh/config (alias `testhost`), ~/.ssh/id_ed25519 and ~/.ssh/known_hosts
holding the server's key. `start()` / `kill()` run and stop /usr/sbin/sshd,
`kill()` taking every connection's process down with it, as a crash would.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from soc_tui.child import descendants

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
KEYGEN = shutil.which("ssh-keygen")


def missing() -> str | None:
    """Why these tests cannot run here, or None."""
    if not os.path.exists(SSHD):
        return "OpenSSH server not installed (apt-get install openssh-server)"
    if KEYGEN is None:
        return "ssh-keygen not installed"
    if not os.path.exists("/usr/lib/openssh/sftp-server"):
        return "openssh-sftp-server not installed"
    if not os.path.isdir("/run/sshd") and not os.access("/run", os.W_OK):
        return "sshd needs /run/sshd (run as root, or create it)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


class SshServer:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "sshd"
        self.dir.mkdir()
        self.port = free_port()
        self.host_pub = keygen(self.dir / "host_key")
        self.home = tmp / "home"
        ssh = self.home / ".ssh"
        ssh.mkdir(parents=True, mode=0o700)
        client_pub = keygen(ssh / "id_ed25519")
        (self.dir / "authorized_keys").write_text(client_pub + "\n")
        self.user = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name
        (ssh / "config").write_text(
            f"Host testhost\n  HostName 127.0.0.1\n  Port {self.port}\n  User {self.user}\n"
        )
        self.trust(self.host_pub)
        self.config = self.dir / "sshd_config"
        self.pidfile = self.dir / "sshd.pid"
        self.log = self.dir / "sshd.log"
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.dir / 'host_key'}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\nPidFile {self.pidfile}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
            "LogLevel VERBOSE\n"  # MaxSessions stays at sshd's default of 10
            # The session's shell must not read this machine's ~/.bashrc (a
            # pyenv hook there can stall every command): HOME is a bare directory.
            f"SetEnv HOME={self.dir}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def trust(self, pub: str) -> None:
        """Make ~/.ssh/known_hosts of the test HOME hold exactly this key."""
        (self.home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {pub}\n")

    def env(self) -> dict[str, str]:
        """Environment for a client process: the test HOME, no agent."""
        env = dict(os.environ, HOME=str(self.home))
        env.pop("SSH_AUTH_SOCK", None)
        return env

    def start(self) -> None:
        os.makedirs("/run/sshd", exist_ok=True)
        self.pidfile.unlink(missing_ok=True)
        self.proc = subprocess.Popen([SSHD, "-D", "-f", str(self.config), "-E", str(self.log)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not start: {self.log.read_text() if self.log.exists() else ''}")

    def kill(self) -> None:
        """Kill the server and every connection it serves (SIGKILL)."""
        if self.proc is None:
            return
        for pid in [self.proc.pid, *descendants(self.proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(5)
        self.proc = None
