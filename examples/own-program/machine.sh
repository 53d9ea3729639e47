#!/bin/sh
# A stand-in "machine" for the example program: an sshd on 127.0.0.1 that logs root in with a key of its own and
# gives its sessions the folder <dir>/<name>/root as the node's root (WSF_NODE_ROOT for commands; /var/lib for
# SFTP, in a mount namespace of its own), seeded with a containerd config. In your program a machine is a VM;
# here it is this host, so nothing outside <dir> is touched. Needs root, Debian's openssh-server, python3.
#   machine.sh start NAME DIR SEED   prints one JSON line: host, port, hostKey, privateKey
#   machine.sh stop NAME DIR         stops the sshd and removes <dir>/<name>
set -eu
cmd=$1 name=$2 dir=$3
m=$dir/$name
case $cmd in
start)
    seed=$4
    mkdir -p "$m/root/etc/containerd" "$m/root/var/lib" /run/sshd
    [ -e "$m/root/etc/containerd/config.toml" ] || cp "$seed" "$m/root/etc/containerd/config.toml"
    [ -e "$m/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$m/host_ed25519"
    [ -e "$m/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$name-login" -f "$m/id_ed25519"
    printf 'environment="WSF_NODE_ROOT=%s" %s\n' "$m/root" "$(cat "$m/id_ed25519.pub")" > "$m/authorized_keys"
    printf "mount --bind '%s' /var/lib && exec /usr/lib/openssh/sftp-server\n" "$m/root/var/lib" > "$m/sftp.sh"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat > "$m/sshd.conf" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $m/host_ed25519
PidFile $m/sshd.pid
AuthorizedKeysFile $m/authorized_keys
PermitRootLogin prohibit-password
PermitUserEnvironment yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 20
MaxStartups 50
Subsystem sftp /usr/bin/unshare --mount --propagation private /bin/sh $m/sftp.sh
CONF
    /usr/sbin/sshd -f "$m/sshd.conf" -E "$m/sshd.log"   # a daemon: its pid goes to sshd.pid
    python3 - "$port" "$m" <<'PY'
import json, socket, sys, time
port, m = int(sys.argv[1]), sys.argv[2]
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(f"sshd of {m} does not listen on 127.0.0.1:{port}: {open(m + '/sshd.log').read()}")
host_key = " ".join(open(f"{m}/host_ed25519.pub").read().split()[:2])
print(json.dumps({"host": "127.0.0.1", "port": port, "hostKey": host_key,
                  "privateKey": open(f"{m}/id_ed25519").read()}))
PY
    ;;
stop)
    if [ -f "$m/sshd.pid" ]; then kill "$(cat "$m/sshd.pid")" 2>/dev/null || true; fi
    rm -rf -- "$m"
    ;;
*)
    echo "usage: machine.sh start NAME DIR SEED | stop NAME DIR" >&2
    exit 2
    ;;
esac
