"""An OpenSSH server on 127.0.0.1 standing in for a remote GPU machine, for NNI's `remote` training service.

The server is the real ``sshd`` (Debian's openssh-server, installed by ``.ci/run``) with its own config,
host key and client key pair in a temporary folder, key authentication only. Its sessions get their own
``HOME`` (so NNI's worker-side folders, ``~/nni-experiments/...``, land in the stand-in machine's folder,
never in the submitting user's) and the environment a real worker would be given (``SetEnv``):

- ``PIP_NO_INDEX=1``: NNI 3.0's worker runs ``python -m pip install nni --upgrade`` before anything else
  and aborts the worker if it fails; with nni already installed at the same version and no index, pip
  answers "Requirement already satisfied" at once, without network and without upgrading anything;
- ``NNB_DATA_ROOT`` / ``NNB_CHECKPOINT_DIR`` / ``NNB_CACHE_DIR``: the worker's own folders, which the
  trial reads because the trial command names no path.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port

SSHD = Path("/usr/sbin/sshd")


class SshdUnavailable(RuntimeError):
    """sshd is not installed or cannot start here (the reason is the message)."""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class LoopbackSshd:
    """A running sshd: connect as ``user`` to 127.0.0.1:``port`` with ``client_key``."""

    port: int
    user: str
    client_key: Path
    home: Path
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """Stop this sshd (only the process this object started)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_sshd(folder: Path, env: dict[str, str]) -> LoopbackSshd:
    """Start sshd with config and keys under ``folder``; sessions get ``env`` (HOME included) via SetEnv.

    Raises :class:`SshdUnavailable` when sshd is missing or does not come up.
    """
    import getpass

    if not SSHD.is_file():
        raise SshdUnavailable(f"{SSHD} not found: apt-get install openssh-server (.ci/run does)")
    if not shutil.which("ssh-keygen"):
        raise SshdUnavailable("ssh-keygen not found: install openssh-client")
    folder.mkdir(parents=True, exist_ok=True)
    host_key, client_key = folder / "host_ed25519", folder / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = folder / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    # sshd refuses to start without its privilege-separation folder (normally made by the init script).
    # Without root it cannot be made; `sshd -t` below then says whether this sshd needs it.
    try:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    except OSError:
        pass
    if any(" " in v or '"' in v for v in env.values()):
        raise ValueError("SetEnv values must not contain spaces or quotes")
    port = free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",          # the key files live in a pytest tmp folder with its default modes
        "UsePAM no",
        "Subsystem sftp internal-sftp",   # NNI uploads the trial code over SFTP
        "SetEnv " + " ".join(f"{k}={v}" for k, v in env.items()),
        "",
    ]))
    log = folder / "sshd.log"
    test = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True)
    if test.returncode != 0:
        raise SshdUnavailable(f"sshd rejects its test config: {test.stderr.strip()}")
    process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log.open("w"),
                               stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    while not _listening(port):
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise SshdUnavailable(f"sshd did not start listening on port {port}: {log.read_text()[-500:]}")
        time.sleep(0.1)
    return LoopbackSshd(port=port, user=getpass.getuser(), client_key=client_key, home=Path(env["HOME"]),
                        process=process, log=log)
