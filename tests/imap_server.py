"""A throw-away IMAP server for tests: Debian's dovecot on a loopback port.

Each server lives in its own directory under /tmp (config, users, mail, the
master's sockets). Not under pytest's tmp_path: that is private to root
(0700) and dovecot's mail processes run as `nobody`, and the control sockets'
paths must stay under the 108 bytes a Unix socket path may have. Dovecot must
run as root (as CI does); it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import datetime
import imaplib
import ipaddress
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.ports import release_port, reserve_port
from tests.servers import unavailable

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USERS = {"support@shop.test": "support-secret", "sales@shop.test": "sales-secret"}
START_SECONDS = 10.0

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
disable_plaintext_auth = no
auth_mechanisms = plain login
# No 2 s pause after a wrong password, and no growing penalty for the address:
# every client here is 127.0.0.1, and one test logs in wrongly on purpose.
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
{ssl}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
"""


@dataclass
class Dovecot:
    directory: Path
    port: int  # plain, and STARTTLS when started with tls=True
    tls_port: int  # TLS from the first byte (0: none)
    cafile: Path | None = None  # the self-signed certificate, when tls=True
    host: str = "127.0.0.1"

    def client(self, user: str = "support@shop.test") -> imaplib.IMAP4:
        connection = imaplib.IMAP4(self.host, self.port, timeout=10)
        connection.login(user, USERS[user])
        return connection

    def append(self, raw: bytes, folder: str = "INBOX", user: str = "support@shop.test") -> int:
        """Deliver a message into `folder`; its UID."""
        with _session(self.client(user)) as imap:
            status, data = imap.append(folder, None, None, raw)
        assert status == "OK", data
        found = re.search(rb"APPENDUID \d+ (\d+)", data[0])
        assert found, data
        return int(found.group(1))

    def flags(self, folder: str = "INBOX", user: str = "support@shop.test") -> dict[int, set[str]]:
        """Each message's flags, by UID."""
        with _session(self.client(user)) as imap:
            imap.select(_quoted(folder), readonly=True)
            _status, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
        found: dict[int, set[str]] = {}
        for line in data:
            if isinstance(line, bytes) and (
                match := re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", line)
            ):
                found[int(match.group(1))] = set(match.group(2).decode().split())
        return found

    def uidvalidity(self, folder: str = "INBOX", user: str = "support@shop.test") -> int:
        with _session(self.client(user)) as imap:
            _status, data = imap.status(_quoted(folder), "(UIDVALIDITY)")
        found = re.search(rb"UIDVALIDITY (\d+)", data[0])
        assert found, data
        return int(found.group(1))

    def create(self, folder: str, user: str = "support@shop.test") -> None:
        with _session(self.client(user)) as imap:
            status, data = imap.create(_quoted(folder))
        assert status == "OK", data

    def delete(self, folder: str, user: str = "support@shop.test") -> None:
        with _session(self.client(user)) as imap:
            status, data = imap.delete(_quoted(folder))
        assert status == "OK", data

    def log(self) -> str:
        path = self.directory / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def dovecot_server(tls: bool = False) -> Iterator[Dovecot]:
    """A running dovecot with the users in USERS; stopped and removed afterwards."""
    if not os.path.exists(DOVECOT):
        unavailable("dovecot is not installed (apt-get install dovecot-imapd)")
    if os.geteuid() != 0:
        unavailable("dovecot for the IMAP tests must be started as root (as CI does)")
    directory = Path(tempfile.mkdtemp(prefix="hub-dovecot-", dir="/tmp"))
    try:
        directory.chmod(0o755)
        (directory / "mail").mkdir(mode=0o777)
        (directory / "mail").chmod(0o777)
        (directory / "users").write_text(
            "".join(f"{user}:{{PLAIN}}{password}\n" for user, password in USERS.items())
        )
        cafile = _certificate(directory) if tls else None
        server = _start(directory, cafile)
        try:
            yield server
        finally:
            _stop(directory)
            release_port(server.port)
            if server.tls_port:
                release_port(server.tls_port)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def trusting(server: Dovecot) -> ssl.SSLContext:
    """A client TLS context that trusts the server's self-signed certificate."""
    assert server.cafile is not None
    return ssl.create_default_context(cafile=str(server.cafile))


def _start(directory: Path, cafile: Path | None) -> Dovecot:
    for _attempt in range(3):
        # Reserved ports: a port merely free now could be taken before dovecot binds it.
        port, tls_port = reserve_port(), (reserve_port() if cafile else 0)
        if cafile:
            ssl_lines = f"ssl = yes\nssl_cert = <{cafile}\nssl_key = <{directory / 'key.pem'}"
        else:
            ssl_lines = "ssl = no"
        config = directory / "dovecot.conf"
        config.write_text(_CONFIG.format(d=directory, port=port, tls_port=tls_port, ssl=ssl_lines))
        # Output to a file, not a pipe: the daemon's children would keep a pipe open.
        with (directory / "start.log").open("w") as output:
            started = subprocess.run(
                [DOVECOT, "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if started.returncode != 0:
            reason = (directory / "start.log").read_text(errors="replace").strip()
            raise RuntimeError(f"dovecot did not start: {reason}")
        if _ready(port, directory):
            return Dovecot(directory, port, tls_port, cafile)
        _stop(directory)
        for reserved in (port, tls_port):
            release_port(reserved)
    raise RuntimeError(
        f"dovecot did not listen; its log:\n{(directory / 'dovecot.log').read_text()}"
    )


def _ready(port: int, directory: Path) -> bool:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            # Ready when a user can log in: by then the master has started its
            # processes and written its pid (and answers SIGTERM at once).
            with _session(imaplib.IMAP4("127.0.0.1", port, timeout=2)) as imap:
                user, password = next(iter(USERS.items()))
                imap.login(user, password)
            if (directory / "run" / "master.pid").exists():
                return True
            time.sleep(0.01)
        except (OSError, imaplib.IMAP4.error):
            if not (directory / "run" / "master.pid").exists() and "Fatal" in _log(directory):
                return False
            time.sleep(0.02)
    return False


def _stop(directory: Path) -> None:
    pidfile = directory / "run" / "master.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    children = _children(pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    # The master stops its children at once, except its log process, which
    # with the master lingers about a second more: when the others are gone
    # those two are killed (their only work left is in our directory).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        _alive(child) for child, name in children.items() if name != "dovecot/log"
    ):
        time.sleep(0.01)
    for process in (pid, *children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)
    while time.monotonic() < deadline and any(map(_alive, (pid, *children))):
        time.sleep(0.01)


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                found[int(stat.parent.name)] = command.decode(errors="replace").strip()
    return found


def _alive(pid: int) -> bool:
    """True until the process has exited (a zombie waiting to be reaped has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _log(directory: Path) -> str:
    path = directory / "dovecot.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _certificate(directory: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (key.pem and cert.pem in `directory`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert = directory / "cert.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert


@contextmanager
def _session(imap: imaplib.IMAP4) -> Iterator[imaplib.IMAP4]:
    try:
        yield imap
    finally:
        try:
            imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _quoted(folder: str) -> str:
    return f'"{folder}"'
