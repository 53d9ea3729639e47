"""sshd test hosts: Debian's openssh-server on 127.0.0.1, one per port, root login with a generated key.

Every host is this machine; `env` gives each host its own session environment (sshd's
`PermitUserEnvironment` with an `environment=` option in that host's authorized_keys), which is how the e2e
tier gives each "node" its own WSF_NODE_ROOT (and, for SFTP, its own /var/lib) while the program connects to
it like to any SSH node.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.nodes import require

SFTP_SERVER = "/usr/lib/openssh/sftp-server"  # Debian's openssh-server


@dataclass
class SshHost:
    """One Debian openssh-server listening on 127.0.0.1:port, root login with the test key only."""

    port: int
    host_key: str  # "ssh-ed25519 AAAA..." as a stack's nodes[].hostKey pins it
    key_file: Path
    known_hosts: Path
    process: subprocess.Popen

    def ssh(self, command: str, *options: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `command` as root the way pulumi-command's remote.Command does: one exec request carrying the
        whole string (the login shell runs it with -c), no stdin."""
        argv = ["ssh", "-n", "-p", str(self.port), "-i", str(self.key_file), "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "LogLevel=ERROR", *options,
                "root@127.0.0.1", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_hosts(work: Path, count: int, env: Sequence[Mapping[str, str]] | None = None) -> list[SshHost]:
    """Start `count` sshd test hosts in `work`; on failure the ones started are stopped. Stop with stop_hosts."""
    sshd = require("sshd", "openssh-server")
    require("ssh", "openssh-client")
    keygen = require("ssh-keygen", "openssh-client")
    key = work / "id_ed25519"
    if not key.exists():
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "wsf-test", "-f", str(key)], check=True)
    public = (work / "id_ed25519.pub").read_text().strip()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    hosts: list[SshHost] = []
    try:
        for i in range(count):
            host_env = dict(env[i]) if env else {}
            options = ",".join(f'environment="{k}={v}"' for k, v in host_env.items())
            authorized = work / f"authorized_keys{i}"
            authorized.write_text(f"{options} {public}\n" if options else f"{public}\n")
            host_key = work / f"host{i}_ed25519"
            if not host_key.exists():
                subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
            port = free_port()
            sftp = ""
            if "WSF_NODE_ROOT" in host_env:
                # SFTP (pulumi-command's CopyToRemote) sees the node root's var/lib as /var/lib, in a mount
                # namespace of its own: each test host's files stay under its node root, like exec sessions'.
                lib = f"{host_env['WSF_NODE_ROOT'].rstrip('/')}/var/lib"
                wrapper = work / f"sftp{i}.sh"
                wrapper.write_text(f"mkdir -p '{lib}' && mount --bind '{lib}' /var/lib && exec {SFTP_SERVER}\n")
                sftp = f"Subsystem sftp /usr/bin/unshare --mount --propagation private /bin/sh {wrapper}\n"
            cfg = work / f"sshd{i}.conf"
            cfg.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {work}/sshd{i}.pid
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PermitUserEnvironment {"yes" if host_env else "no"}
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
MaxSessions 20
MaxStartups 50
{sftp}""")
            check = subprocess.run([sshd, "-t", "-f", str(cfg)], capture_output=True, text=True)
            if check.returncode != 0:
                pytest.fail(f"sshd rejects its test config: {check.stderr}")
            pub = " ".join((work / f"host{i}_ed25519.pub").read_text().split()[:2])
            known = work / f"known_hosts{i}"
            known.write_text(f"[127.0.0.1]:{port} {pub}\n")
            with open(work / f"sshd{i}.log", "w") as log:  # the child keeps its own copy of the descriptor
                proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=log)
            host = SshHost(port, pub, key, known, proc)
            hosts.append(host)
            for _ in range(100):
                if host.ssh("true", timeout=10).returncode == 0:
                    break
                if proc.poll() is not None:
                    pytest.fail(f"sshd exited: {(work / f'sshd{i}.log').read_text()}")
                time.sleep(0.1)
            else:
                pytest.fail(f"sshd on 127.0.0.1:{port} does not accept the test key")
    except BaseException:
        stop_hosts(hosts)
        raise
    return hosts


def stop_hosts(hosts: Sequence[SshHost]) -> None:
    for host in hosts:
        host.process.terminate()
        try:
            host.process.wait(10)
        except subprocess.TimeoutExpired:
            host.process.kill()
            host.process.wait()
