# wasm-shim-fleet node kit: the shared logic every wasm-shim-fleet resource script on a node runs.
#
# Delivered once per node by the node's own kit resource to
#   $WSF_NODE_ROOT/var/lib/wasm-shim-fleet/kit/<sha256 of this file>/wsf.sh
# next to a file `selected` that names the kit in use. A resource script reads `selected`, checks that the
# kit's sha256 is its folder's name, sources it and calls one entry point with its own values:
#
#   wsf <call version> <flavor> install-binary <name> <url> <sha256> <archive member or ''> [version|none]
#                                              [largest download in bytes; default DEFAULT_MAX_BYTES]
#   wsf <call version> <flavor> remove-binary  <name> <runtime_type>
#   wsf <call version> <flavor> apply-table    <handler>=<runtime_type> ...   (sorted by handler)
#   wsf <call version> <flavor> remove-table
#   wsf <call version> <flavor> prune-binaries <name> ...   (agent pools: remove installed binaries not named)
#   wsf <call version> <flavor> status                      (read-only: the managed handlers and their binaries)
#
# The call version changes only when this interface does: a delete recorded in a stack's state long ago
# still runs on whatever kit the node has now.
#
# Settings, read from the environment (all optional except as said):
#   WSF_NODE_ROOT        prefix of every path touched (the resource script sets it; default /)
#   WSF_RESTART          command that restarts containerd (table scripts set it); ':' never restarts
#   WSF_LOCK_WAIT        seconds to wait for another command's lock (600)
#   WSF_CONTAINERD_WAIT  seconds to wait for containerd after a restart (60)
#   WSF_DOWNLOAD_TIMEOUT seconds a download may take in all, retries included (600)
# Needs sh, coreutils, tar (+gzip for .tar.gz), and curl for https URLs; uses flock, ctr and crictl when present.
# Exit 0 with a last line `changed` or `unchanged`; on failure non-zero with one line on stderr.
#
# State, all under $WSF_NODE_ROOT/var/lib/wasm-shim-fleet/:
#   lock or lock.d/      one command at a time per node (flock; else a mkdir lock holding the pid)
#   binaries/<name>.sha256  "<artifact sha256> <installed file sha256>" of each installed binary
#   table.sha256         sha256 of the handler tables containerd was last verified to have loaded
#   config.orig          the config as it was before the first block was added (removed by remove-table)
#   config.prev(.absent) the last verified config while a change is in flight; present at start means an
#                        earlier run was interrupted, and it stays the rollback target
#   kit/                 this kit (older kits are removed by the next command that runs)

# >>> data (generated from components/core/flavors.py and containerd.py; tests keep it equal) >>>
# wsf_flavor NAME: FLAVOR CONFIG_VERSION TABLES TEMPLATE CONFIG_PATH CREATE_BASE LOADED_CONFIG SOCKET
wsf_flavor() {
    case $1 in
        containerd-legacy) FLAVOR=containerd-legacy CONFIG_VERSION=1 TABLES='1' TEMPLATE=0
            CONFIG_PATH='/etc/containerd/config.toml' CREATE_BASE=''
            LOADED_CONFIG='/etc/containerd/config.toml' SOCKET='/run/containerd/containerd.sock' ;;
        containerd-1) FLAVOR=containerd-1 CONFIG_VERSION=2 TABLES='2' TEMPLATE=0
            CONFIG_PATH='/etc/containerd/config.toml' CREATE_BASE=''
            LOADED_CONFIG='/etc/containerd/config.toml' SOCKET='/run/containerd/containerd.sock' ;;
        containerd-2) FLAVOR=containerd-2 CONFIG_VERSION=3 TABLES='3 2' TEMPLATE=0
            CONFIG_PATH='/etc/containerd/config.toml' CREATE_BASE=''
            LOADED_CONFIG='/etc/containerd/config.toml' SOCKET='/run/containerd/containerd.sock' ;;
        k3s) FLAVOR=k3s CONFIG_VERSION=2 TABLES='2' TEMPLATE=1
            CONFIG_PATH='/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl' CREATE_BASE='{{ template "base" . }}'
            LOADED_CONFIG='/var/lib/rancher/k3s/agent/etc/containerd/config.toml' SOCKET='/run/k3s/containerd/containerd.sock' ;;
        rke2) FLAVOR=rke2 CONFIG_VERSION=2 TABLES='2' TEMPLATE=1
            CONFIG_PATH='/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl' CREATE_BASE='{{ template "base" . }}'
            LOADED_CONFIG='/var/lib/rancher/rke2/agent/etc/containerd/config.toml' SOCKET='/run/k3s/containerd/containerd.sock' ;;
        k3s-2) FLAVOR=k3s-2 CONFIG_VERSION=3 TABLES='3' TEMPLATE=1
            CONFIG_PATH='/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl' CREATE_BASE='{{ template "base" . }}'
            LOADED_CONFIG='/var/lib/rancher/k3s/agent/etc/containerd/config.toml' SOCKET='/run/k3s/containerd/containerd.sock' ;;
        rke2-2) FLAVOR=rke2-2 CONFIG_VERSION=3 TABLES='3' TEMPLATE=1
            CONFIG_PATH='/var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.tmpl' CREATE_BASE='{{ template "base" . }}'
            LOADED_CONFIG='/var/lib/rancher/rke2/agent/etc/containerd/config.toml' SOCKET='/run/k3s/containerd/containerd.sock' ;;
        microk8s) FLAVOR=microk8s CONFIG_VERSION=2 TABLES='2' TEMPLATE=1
            CONFIG_PATH='/var/snap/microk8s/current/args/containerd-template.toml' CREATE_BASE=''
            LOADED_CONFIG='/var/snap/microk8s/current/args/containerd.toml' SOCKET='/var/snap/microk8s/common/run/containerd.sock' ;;
        k0s) FLAVOR=k0s CONFIG_VERSION=3 TABLES='3 2' TEMPLATE=1
            CONFIG_PATH='/etc/k0s/containerd.d/wasm-shim-fleet.toml' CREATE_BASE='version = {version}'
            LOADED_CONFIG='/etc/k0s/containerd.toml' SOCKET='/run/k0s/containerd.sock' ;;
        *) return 1 ;;
    esac
    table_of "$CONFIG_VERSION"; RUNTIMES_TABLE=$wsf_table
}
# table_of VERSION: wsf_table, the runtimes table (canonical dotted key) of a config version.
table_of() {
    case $1 in
        1) wsf_table='plugins.cri.containerd.runtimes' ;;
        2) wsf_table='plugins."io.containerd.grpc.v1.cri".containerd.runtimes' ;;
        3) wsf_table='plugins."io.containerd.cri.v1.runtime".containerd.runtimes' ;;
        *) return 1 ;;
    esac
}
# The flavors that fit a config version (for the version mismatch error).
fits() {
    case $1 in
        1) echo 'containerd-legacy' ;;
        2) echo 'containerd-1 or k3s or rke2 or microk8s or k0s' ;;
        3) echo 'containerd-2 or k3s-2 or rke2-2 or k0s' ;;
        4) echo 'containerd-2' ;;
        *) echo 'none: config version '"$1"' is unknown' ;;
    esac
}
BEGIN_MARK='# >>> wasm-shim-fleet managed handler table >>>'
END_MARK='# <<< wasm-shim-fleet managed handler table <<<'
ORIGINAL_PREFIX='# wasm-shim-fleet original: '
# The largest download when the catalog entry sets no maxBytes.
DEFAULT_MAX_BYTES=268435456
# <<< data <<<

# ---------------------------------------------------------------------------------------------- helpers
say() { printf 'wasm-shim-fleet: %s\n' "$*"; }
# One line on stderr, then exit 1: the caller (pulumi-command, an operator) sees the reason.
die() { printf 'wasm-shim-fleet: error: %s\n' "$*" >&2; exit 1; }
# Progress marker between the steps of a change: step <id> [message]. A run interrupted between any two
# steps converges when re-run (the fault tests prove it at every id, with a kit of their own that dies here).
# Only steps with a message print: what is printed stays in the stack's state (pulumi-command keeps stdout).
step() {
    [ -z "${2:-}" ] || say "$2"
}
sha256_of() {
    wsf_h=$(sha256sum < "$1") || return 1
    printf '%s\n' "${wsf_h%% *}"
}
# Write a small state file atomically (a crash leaves the old or the new content, never half).
put_state() {
    if ! { printf '%s\n' "$2" > "$1.wsf-tmp" && mv -f "$1.wsf-tmp" "$1"; }; then die "cannot write $1 (disk full?)"; fi
}
# Copy a file to a temporary name beside the target and rename it over the target, keeping the target's
# mode and owner when it exists. Never writes into the target in place.
replace_file() {  # src target
    wsf_t="$(dirname -- "$2")/.$(basename -- "$2").wsf-tmp"
    if [ -e "$2" ]; then cp -p -- "$2" "$wsf_t" || die "cannot write beside $2 (disk full?)"; fi
    cat -- "$1" > "$wsf_t" || { rm -f -- "$wsf_t"; die "cannot write $wsf_t (disk full?)"; }
    sync_file "$wsf_t"
    mv -f -- "$wsf_t" "$2" || { rm -f -- "$wsf_t"; die "cannot rename $wsf_t to $2"; }
    sync_file "$(dirname -- "$2")"
}
# Flush a file (or a folder, after a rename in it) to disk: a config renamed into place must not turn out empty
# after a power loss, the old one gone.
sync_file() {  # path
    sync -- "$1" 2>/dev/null || sync
}
strip_blanks() {  # sets wsf_s to $1 without leading and trailing blanks
    wsf_s=$1
    wsf_s=${wsf_s#"${wsf_s%%[! 	]*}"}
    wsf_s=${wsf_s%"${wsf_s##*[! 	]}"}
}

# ---------------------------------------------------------------------------------------- paths, lock
wsf_init() {
    # Work copies of containerd's config, its dumps and downloads are the node's business only: everything the
    # kit writes is private unless it is a final target (a shim binary, a config containerd loads).
    umask 077
    # A stack's passphrase is nothing the node's commands (WSF_RESTART, shim probes) should inherit.
    unset PULUMI_CONFIG_PASSPHRASE PULUMI_CONFIG_PASSPHRASE_FILE
    case $WSF_NODE_ROOT in
        /*) ;;
        *) WSF_NODE_ROOT=$(pwd)/$WSF_NODE_ROOT ;;
    esac
    export WSF_NODE_ROOT  # for WSF_RESTART commands that need it (tests, hosts that are not systemd machines)
    R=$WSF_NODE_ROOT
    while :; do case $R in */) R=${R%/} ;; *) break ;; esac; done
    STATE=$R/var/lib/wasm-shim-fleet
    BIN=$R/usr/local/bin
    CHANGED=0
    WORK=
    STAGED=
    CHECK=
    LOCKED=
    mkdir -p -- "$STATE" || die "cannot create $STATE"
    chmod 700 "$STATE" || die "cannot make $STATE private"
    trap wsf_exit EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
wsf_exit() {
    wsf_rc=$?
    if [ -n "$WORK" ]; then rm -rf -- "$WORK"; fi
    if [ -n "$STAGED" ]; then rm -f -- "$STAGED"; fi
    if [ -n "$CHECK" ]; then rm -f -- "$CHECK"; fi
    if [ "$LOCKED" = mkdir ]; then rm -rf -- "$STATE/lock.d"; fi
    exit "$wsf_rc"
}
# One command at a time per node (P4): every script on a node takes this lock before touching anything.
# flock when present (the kernel drops it when the holder dies); otherwise a mkdir lock holding the pid,
# broken when that pid is gone (a run killed with SIGKILL cannot clean up after itself).
# Is the mkdir lock held by OWNER (its pid, "" when its holder died before writing it) stale?
lock_stale() {  # owner
    if [ -n "$1" ]; then
        ! kill -0 "$1" 2>/dev/null
    else
        # Holder died between mkdir and writing its pid: stale once it is old enough.
        [ "$(( $(date +%s) - $(stat -c %Y -- "$STATE/lock.d" 2>/dev/null || date +%s) ))" -ge 30 ]
    fi
}
lock_acquire() {
    wsf_wait=${WSF_LOCK_WAIT:-600}
    if command -v flock >/dev/null 2>&1; then
        exec 9>>"$STATE/lock"
        flock -w "$wsf_wait" 9 || die "another wasm-shim-fleet command held $STATE/lock for ${wsf_wait}s"
        LOCKED="flock"
    else
        wsf_waited=0
        while ! mkdir -- "$STATE/lock.d" 2>/dev/null; do
            wsf_owner=$(cat -- "$STATE/lock.d/pid" 2>/dev/null || true)
            if lock_stale "$wsf_owner"; then
                # One breaker at a time, and the lock read again under it: two runs that both judged it stale
                # must not both break it (the later one would break the lock the earlier one has taken since).
                if mkdir -- "$STATE/lock.break.d" 2>/dev/null; then
                    wsf_now=$(cat -- "$STATE/lock.d/pid" 2>/dev/null || true)
                    if [ -d "$STATE/lock.d" ] && [ "$wsf_now" = "$wsf_owner" ] && lock_stale "$wsf_now"; then
                        say "breaking the stale lock of a run that is gone (pid ${wsf_owner:-unknown})"
                        if mv -- "$STATE/lock.d" "$STATE/lock.stale.$$" 2>/dev/null; then
                            rm -rf -- "$STATE/lock.stale.$$"
                        fi
                    fi
                    rmdir -- "$STATE/lock.break.d"
                    continue
                fi
                # A breaker left by a run killed while it broke a lock: stale once it is old enough.
                if [ "$(( $(date +%s) - $(stat -c %Y -- "$STATE/lock.break.d" 2>/dev/null || date +%s) ))" -ge 30 ]; then
                    rmdir -- "$STATE/lock.break.d" 2>/dev/null || :
                    continue
                fi
            fi
            [ "$wsf_waited" -lt "$wsf_wait" ] || die "another wasm-shim-fleet command (pid $wsf_owner) held $STATE/lock.d for ${wsf_wait}s"
            sleep 1
            wsf_waited=$((wsf_waited + 1))
        done
        LOCKED="mkdir"
        echo $$ > "$STATE/lock.d/pid"
    fi
    # Leftovers of a run that was killed: its scratch folder and temporary files (never the real files).
    rm -rf -- "$STATE"/tmp.*
    for wsf_f in "$BIN"/.containerd-shim-*.wsf-tmp "$STATE"/*.wsf-tmp "$STATE"/binaries/*.wsf-tmp; do
        if [ -e "$wsf_f" ]; then rm -f -- "$wsf_f"; fi
    done
    WORK=$STATE/tmp.$$
    mkdir -- "$WORK" || die "cannot create $WORK"
}
finish() {
    if [ "$CHANGED" = 1 ]; then echo changed; else echo unchanged; fi
}

# ------------------------------------------------------------------------------------------- binaries
# Download (or copy a file: URL) to DEST, at most MAX bytes: a larger artifact is refused before its sha256 is
# computed, whatever the server says it is. curl: -q first (root's ~/.curlrc does not apply), https only, redirects
# too, a connect timeout and a total one (WSF_DOWNLOAD_TIMEOUT), --max-filesize for a size the server announces,
# and a file size limit for the one it does not. FETCH_BIG is set when the artifact was too large.
fetch() {  # url dest max-bytes
    FETCH_BIG=
    case $1 in
        file://*%*) die "cannot read $1: percent-encoded file:// URLs are not supported" ;;
        file://*)
            fe_size=$(stat -c %s -- "${1#file://}" 2>"$WORK/fetch.err") || return 1
            if [ "$fe_size" -gt "$3" ]; then FETCH_BIG=$fe_size; return 1; fi
            cp -- "${1#file://}" "$2" 2>"$WORK/fetch.err" ;;
        *)
            command -v curl >/dev/null 2>&1 ||
                die "curl is not installed on the node: install it (downloads need curl, which keeps them and their redirects on https); nothing was changed"
            fe_time=${WSF_DOWNLOAD_TIMEOUT:-600}
            fe_rc=0
            (
                ulimit -f $(( $3 / 512 + 2 ))
                exec curl -q -fsSL --proto =https --proto-redir =https --retry 3 --connect-timeout 30 \
                    --max-time "$fe_time" --retry-max-time "$fe_time" --max-filesize "$3" -o "$2" -- "$1"
            ) 2>"$WORK/fetch.err" || fe_rc=$?
            fe_size=$(stat -c %s -- "$2" 2>/dev/null || echo 0)
            if [ "$fe_rc" = 63 ] || [ "$fe_size" -gt "$3" ] || { [ "$fe_rc" != 0 ] && [ "$fe_size" -ge "$3" ]; }; then
                FETCH_BIG='more'
                return 1
            fi
            return "$fe_rc" ;;
    esac
}
install_binary() {  # name url sha256 member ("" for a bare binary) probe (version|none) [max-bytes]
    ib_name=$1 ib_url=$2 ib_want=$3 ib_member=$4 ib_probe=$5 ib_max=${6:-$DEFAULT_MAX_BYTES}
    ib_dest=$BIN/$ib_name
    ib_record=$STATE/binaries/$ib_name.sha256
    ib_have=
    if [ -f "$ib_dest" ]; then
        ib_have=$(sha256_of "$ib_dest") || die "cannot read $ib_dest"
        ib_rec=$(cat -- "$ib_record" 2>/dev/null || true)
        if [ "$ib_rec" = "$ib_want $ib_have" ]; then
            say "$ib_name is installed"
            return 0
        fi
        if [ -z "$ib_member" ] && [ "$ib_have" = "$ib_want" ]; then
            mkdir -p -- "$STATE/binaries"
            put_state "$ib_record" "$ib_want $ib_have"
            say "$ib_name is installed"
            return 0
        fi
    fi
    # A node whose /usr/local/bin is read-only (GKE's Container-Optimized OS, Bottlerocket) cannot take a shim
    # binary: say so before anything is downloaded or changed.
    if [ -d "$BIN" ] && ! (: > "$BIN/.$ib_name.wsf-tmp") 2>"$WORK/write.err"; then
        die "$BIN is not writable on this node ($(sed -n 's/.*: //p' "$WORK/write.err" | head -n 1)): shim binaries cannot be installed here (a read-only node image such as Container-Optimized OS or Bottlerocket); nothing was changed"
    fi
    rm -f -- "$BIN/.$ib_name.wsf-tmp"
    # Download and verify before anything on the node changes.
    ib_dl=$WORK/$ib_name.download
    if ! fetch "$ib_url" "$ib_dl" "$ib_max"; then
        if [ -n "$FETCH_BIG" ]; then
            ib_is=
            if [ "$FETCH_BIG" != more ]; then ib_is=" ($FETCH_BIG bytes)"; fi
            die "the artifact at $ib_url is larger than $ib_max bytes$ib_is, the most this catalog entry allows (maxBytes; default $DEFAULT_MAX_BYTES); nothing was changed"
        fi
        # curl's own line ("curl: (60) ..."), not the advice it prints after it
        ib_why=$(sed -n '/^curl: ([0-9]*)/{p;q;}' "$WORK/fetch.err" 2>/dev/null || true)
        die "download of $ib_url failed: ${ib_why:-$(tail -n 1 "$WORK/fetch.err" 2>/dev/null)}"
    fi
    step binary-downloaded
    ib_got=$(sha256_of "$ib_dl") || die "cannot read the download of $ib_url (disk full?)"
    if [ "$ib_got" != "$ib_want" ]; then
        die "sha256 mismatch for $ib_url: expected $ib_want, got $ib_got; nothing was changed"
    fi
    step binary-verified
    # Stage beside the target and rename: a running shim keeps its old inode (never 'text file busy').
    (umask 022; mkdir -p -- "$BIN") || die "cannot create $BIN"
    mkdir -p -- "$STATE/binaries" || die "cannot create $STATE/binaries"
    ib_tmp=$BIN/.$ib_name.wsf-tmp
    if [ -n "$ib_member" ]; then
        if ! tar -xOf "$ib_dl" -- "$ib_member" > "$ib_tmp" 2>"$WORK/tar.err"; then
            rm -f -- "$ib_tmp"
            die "cannot extract $ib_member from $ib_url to $ib_tmp: $(head -n 1 "$WORK/tar.err")"
        fi
    elif ! cp -- "$ib_dl" "$ib_tmp" 2>"$WORK/cp.err"; then
        rm -f -- "$ib_tmp"
        die "cannot write $ib_tmp: $(tail -n 1 "$WORK/cp.err")"
    fi
    if [ ! -s "$ib_tmp" ]; then rm -f -- "$ib_tmp"; die "$ib_member in $ib_url is empty"; fi
    chmod 0755 "$ib_tmp" || die "cannot chmod $ib_tmp"
    probe_binary "$ib_tmp" "$ib_name" "$ib_probe"
    ib_new=$(sha256_of "$ib_tmp") || die "cannot read $ib_tmp"
    step binary-staged
    if [ "$ib_have" = "$ib_new" ]; then
        rm -f -- "$ib_tmp"
    else
        mv -f -- "$ib_tmp" "$ib_dest" || die "cannot rename $ib_tmp to $ib_dest"
        CHANGED=1
        say "installed $ib_dest (sha256 verified)"
    fi
    step binary-installed
    put_state "$ib_record" "$ib_want $ib_new"
}
# Run a staged shim binary with -v (probe version) before it replaces anything: a binary for another
# architecture or one missing a shared library fails here, with the reason, and is never installed.
probe_binary() {  # file name probe
    [ "$3" = version ] || return 0
    pb_rc=0
    if command -v timeout >/dev/null 2>&1; then
        timeout 30 "$1" -v </dev/null >"$WORK/probe.out" 2>&1 9>&- || pb_rc=$?
    else
        "$1" -v </dev/null >"$WORK/probe.out" 2>&1 9>&- || pb_rc=$?
    fi
    if [ "$pb_rc" != 0 ]; then
        rm -f -- "$1"
        pb_said=
        while IFS= read -r pb_l || [ -n "$pb_l" ]; do [ -z "$pb_l" ] || pb_said=$pb_l; done < "$WORK/probe.out"
        die "$2 does not run on this node: '$2 -v' exited $pb_rc${pb_said:+: $pb_said}; nothing was changed (wrong architecture or a missing library? set probe: none in the catalog only for a binary without -v)"
    fi
    say "$2 runs: $(head -n 1 "$WORK/probe.out")"
}
# Refuses while any runtime_type in the config still points at the binary: containerd would fail every pod
# of that handler with "binary not installed".
remove_binary() {  # name runtime_type
    rb_name=$1 rb_type=$2
    for rb_f in "$CFG" "$LOADED"; do
        [ -f "$rb_f" ] || continue
        rb_n=0
        while IFS= read -r rb_line || [ -n "$rb_line" ]; do
            rb_n=$((rb_n + 1))
            strip_blanks "$rb_line"
            case $wsf_s in
                runtime_type*=*) ;;
                *) continue ;;
            esac
            strip_blanks "${wsf_s#*=}"
            case $wsf_s in
                "\"$rb_type\""*|"'$rb_type'"*)
                    die "refusing to remove $rb_name: $rb_f line $rb_n still sets runtime_type $rb_type; remove the handler table first" ;;
            esac
        done < "$rb_f"
    done
    if [ -e "$BIN/$rb_name" ] || [ -e "$STATE/binaries/$rb_name.sha256" ]; then
        rm -f -- "$BIN/$rb_name" "$STATE/binaries/$rb_name.sha256" || die "cannot remove $BIN/$rb_name"
        CHANGED=1
        say "removed $BIN/$rb_name"
    else
        say "$rb_name is not installed"
    fi
}

# Agent pools: after the table no longer names them, remove every binary this kit installed (recorded in
# binaries/) that is not in the keep list. A binary the config still names is refused by remove_binary.
prune_binaries() {  # keep-name ...
    for pb_f in "$STATE"/binaries/*.sha256; do
        [ -e "$pb_f" ] || continue
        pb_name=${pb_f##*/}
        pb_name=${pb_name%.sha256}
        is_binary_name "$pb_name" || die "$pb_f does not name a shim binary (containerd-shim-<name>-v<N>); remove it by hand"
        pb_keep=0
        for pb_k in "$@"; do
            if [ "$pb_k" = "$pb_name" ]; then pb_keep=1; break; fi
        done
        [ "$pb_keep" = 0 ] || continue
        pb_h=${pb_name#containerd-shim-}
        remove_binary "$pb_name" "io.containerd.${pb_h%-v*}.v${pb_h##*-v}"
    done
}
# Read-only: each handler in the managed block of the config, with its runtime_type, and whether the binary
# containerd runs for it is in place: `wsf-status handler <name> <runtime_type> ok|no-binary`.
status_table() {
    config_paths
    [ -f "$CFG" ] || return 0
    scan_config "$CFG"
    [ "$SCAN_BEGIN" -gt 0 ] && [ "$SCAN_END" -gt 0 ] || return 0
    st_n=0 st_h=
    while IFS= read -r st_line || [ -n "$st_line" ]; do
        st_n=$((st_n + 1))
        [ "$st_n" -gt "$SCAN_BEGIN" ] || continue
        [ "$st_n" -lt "$SCAN_END" ] || break
        strip_blanks "$st_line"
        case $wsf_s in
            '['*'.runtimes.'*']') st_h=${wsf_s##*.runtimes.}; st_h=${st_h%]} ;;
            runtime_type*=*)
                [ -n "$st_h" ] || continue
                strip_blanks "${wsf_s#*=}"
                st_t=${wsf_s#\"}
                st_t=${st_t%\"}
                st_n2=${st_t#io.containerd.}
                st_b=containerd-shim-${st_n2%.*}-${st_n2##*.}
                if [ -x "$BIN/$st_b" ]; then st_ok=ok; else st_ok=no-binary; fi
                printf 'wsf-status handler %s %s %s\n' "$st_h" "$st_t" "$st_ok"
                st_h= ;;
        esac
    done < "$CFG"
}

# ----------------------------------------------------------------------------------- the config file
config_paths() {
    CFG=$R$CONFIG_PATH
    # A symlinked config: edit the file it points at, keep the link. Links are followed as the node sees them
    # (an absolute target is under the node root), and the file they lead to must be under the node root.
    cp_n=0
    while [ -L "$CFG" ]; do
        cp_t=$(readlink -- "$CFG") || die "cannot read the symlink $CFG"
        case $cp_t in /*) CFG=$R$cp_t ;; *) CFG=$(dirname -- "$CFG")/$cp_t ;; esac
        cp_n=$((cp_n + 1))
        [ "$cp_n" -le 16 ] || die "$R$CONFIG_PATH: more than 16 symlinks in a row; point it at the config file"
    done
    if [ "$cp_n" -gt 0 ]; then
        cp_dir=$(cd -P -- "$(dirname -- "$CFG")" 2>/dev/null && pwd) ||
            die "$R$CONFIG_PATH is a symlink to $CFG, whose folder does not exist on this node; point it at the config file; nothing was changed"
        if [ -n "$R" ]; then
            cp_root=$(cd -P -- "$R" && pwd) || die "cannot read the node root $R"
            case $cp_dir/ in
                "$cp_root"/*) ;;
                *) die "$R$CONFIG_PATH is a symlink that leads to $cp_dir/$(basename -- "$CFG"), outside the node root $R; point it at a file under the node root; nothing was changed" ;;
            esac
        fi
        CFG=$cp_dir/$(basename -- "$CFG")
    fi
    LOADED=$R$LOADED_CONFIG
    if [ "$LOADED_CONFIG" = "$CONFIG_PATH" ]; then LOADED=$CFG; fi
    # A flavor that creates a file starting with its own `version` writes a drop-in: a config of its own that the
    # loaded config imports (k0s), never a part of the loaded config itself.
    case $CREATE_BASE in 'version = '*) DROPIN=1 ;; *) DROPIN=0 ;; esac
    # A staged config or a candidate left by a run that was killed (we hold the lock: no other run has one).
    rm -f -- "$(dirname -- "$CFG")/.$(basename -- "$CFG").wsf-tmp" "$(dirname -- "$CFG")/.$(basename -- "$CFG").wsf-check" \
        "$(dirname -- "$LOADED")/.$(basename -- "$LOADED").wsf-check"
}
# Canonical form of a TOML dotted key (whitespace dropped, quotes removed where a bare key would do), so
# that `plugins.'io.containerd.cri.v1.runtime'` and `plugins."io.containerd.cri.v1.runtime"` compare equal.
key_norm() {  # sets wsf_key
    kn_s=$1 wsf_key='' kn_part='' kn_q='' kn_dot=''
    while [ -n "$kn_s" ]; do
        kn_c=${kn_s%"${kn_s#?}"}
        kn_s=${kn_s#?}
        if [ -n "$kn_q" ]; then
            if [ "$kn_c" = "$kn_q" ]; then kn_q=; continue; fi
            if [ "$kn_q" = '"' ] && [ "$kn_c" = "\\" ]; then kn_c=${kn_s%"${kn_s#?}"}; kn_s=${kn_s#?}; fi
            kn_part=$kn_part$kn_c
            continue
        fi
        case $kn_c in
            '"'|"'") kn_q=$kn_c ;;
            ' '|'	') ;;
            .) key_part; wsf_key=$wsf_key$kn_dot$kn_p; kn_dot=.; kn_part= ;;
            *) kn_part=$kn_part$kn_c ;;
        esac
    done
    key_part
    wsf_key=$wsf_key$kn_dot$kn_p
}
key_part() {
    case $kn_part in
        ''|*[!A-Za-z0-9_-]*) kn_p="\"$kn_part\"" ;;
        *) kn_p=$kn_part ;;
    esac
}
# One pass over a config file. Sets:
#   SCAN_BEGIN/END line numbers of our block's markers (0: none); SCAN_BLOCKS how many blocks
#   SCAN_BLANK     1 when the line before the block is the empty line we put there
#   SCAN_ORIGINAL  what the block's second line says about the file before it
#   SCAN_OURS      handlers our block defines (" a b "); SCAN_TABLE_V the config version of their table
#   SCAN_CLASH     a table we write that the file also defines outside our block ("" if none)
# Only lines that mention one of our handlers get their keys parsed (substrings are only a pre-filter:
# the comparison is between whole canonical table names, trap 7).
scan_config() {  # file
    SCAN_BEGIN=0 SCAN_END=0 SCAN_BLOCKS=0 SCAN_BLANK=0 SCAN_ORIGINAL='' SCAN_OURS=' ' SCAN_CLASH=''
    SCAN_TABLE_V=''
    sc_n=0 sc_in=0 sc_cur='' sc_prev_empty=0
    while IFS= read -r sc_line || [ -n "$sc_line" ]; do
        sc_n=$((sc_n + 1))
        if [ "$sc_in" = 1 ]; then
            case $sc_line in
                "$END_MARK") sc_in=0; SCAN_END=$sc_n ;;
                "$ORIGINAL_PREFIX"*)
                    if [ "$sc_n" = $((SCAN_BEGIN + 1)) ]; then SCAN_ORIGINAL=${sc_line#"$ORIGINAL_PREFIX"}; fi ;;
                '['*'.runtimes.'*']')
                    sc_h=${sc_line##*.runtimes.}
                    SCAN_OURS="$SCAN_OURS${sc_h%]} "
                    if [ -z "$SCAN_TABLE_V" ]; then
                        sc_k=${sc_line#[}
                        key_norm "${sc_k%]}"
                        for sc_v in 1 2 3; do
                            table_of "$sc_v"
                            if [ "${wsf_key%.*}" = "$wsf_table" ]; then SCAN_TABLE_V=$sc_v; fi
                        done
                    fi ;;
            esac
            continue
        fi
        if [ "$sc_line" = "$BEGIN_MARK" ]; then
            sc_in=1 SCAN_BEGIN=$sc_n SCAN_BLANK=$sc_prev_empty SCAN_BLOCKS=$((SCAN_BLOCKS + 1))
            continue
        fi
        if [ -z "$sc_line" ]; then sc_prev_empty=1; else sc_prev_empty=0; fi
        strip_blanks "$sc_line"
        sc_t=$wsf_s
        case $sc_t in
            ''|'#'*) continue ;;
            '['*)
                sc_cur=${sc_t#[}
                sc_cur=${sc_cur#[}
                sc_cur=${sc_cur%%]*}
                sc_key=$sc_cur ;;
            *=*) sc_key=${sc_cur:+$sc_cur.}${sc_t%%=*} ;;
            *) continue ;;
        esac
        [ -z "$SCAN_CLASH" ] || continue  # the first is the one to name
        for sc_h in $HANDLER_NAMES; do
            case $sc_t in
                *"$sc_h"*) ;;
                *) continue ;;
            esac
            key_norm "$sc_key"
            # Under any runtimes table: containerd 2.x migrates a version 2 file's tables into the 2.x ones.
            for sc_v in 1 2 3; do
                table_of "$sc_v"
                sc_tab=$wsf_table.$sc_h
                case $wsf_key in
                    "$sc_tab"|"$sc_tab".*) SCAN_CLASH="[$sc_tab] (line $sc_n)" ;;
                esac
                # `runtimes = { <handler> = {...} }`: an inline table that holds ours.
                case $sc_tab in
                    "$wsf_key".*) case $sc_t in *=*"{"*) SCAN_CLASH="[$sc_tab] inside an inline table (line $sc_n)" ;; esac ;;
                esac
            done
        done
    done < "$1"
    if [ "$sc_in" = 1 ]; then SCAN_END=0; fi
}
check_scan() {  # file what
    if [ "$SCAN_BLOCKS" -gt 1 ]; then
        die "$1 has $SCAN_BLOCKS wasm-shim-fleet blocks; keep one (delete the others by hand) and re-run"
    fi
    if [ "$SCAN_BEGIN" -gt 0 ] && [ "$SCAN_END" = 0 ]; then
        die "$1 has the start of a wasm-shim-fleet block (line $SCAN_BEGIN) but no end marker; repair it by hand"
    fi
    if [ -n "$SCAN_CLASH" ]; then
        die "refusing to $2: $1 already defines $SCAN_CLASH outside the wasm-shim-fleet block; remove that table or drop the handler from the pool; nothing was changed"
    fi
}
# The file without our block (and without the empty line and final newline we added): the original bytes.
without_block() {  # file out
    wb_keep=$((SCAN_BEGIN - 1 - SCAN_BLANK))
    head -n "$wb_keep" -- "$1" > "$2" || die "cannot write $2 (disk full?)"
    if [ "$SCAN_ORIGINAL" = no-final-newline ] && [ "$wb_keep" -gt 0 ]; then
        truncate -s -1 -- "$2" || die "cannot write $2"
    fi
    tail -n +$((SCAN_END + 1)) -- "$1" >> "$2" || die "cannot write $2 (disk full?)"
}
write_block() {  # original-kind
    printf '\n%s\n%s%s\n' "$BEGIN_MARK" "$ORIGINAL_PREFIX" "$1"
    cat -- "$WORK/tables"
    printf '%s\n' "$END_MARK"
}
# ----------------------------------------------------------------------------- what containerd reads
# Paths written inside containerd's config files (`imports`) are the paths containerd itself opens: they are used
# as written (relative ones against the including file's folder), never prefixed with WSF_NODE_ROOT.
#
# CTRD_MAJOR: the major version of the containerd on PATH ("" when there is none), the one asked below.
find_containerd() {
    CTRD_MAJOR=
    command -v containerd >/dev/null 2>&1 || return 0
    fc_v=$(containerd --version 2>/dev/null) || return 0
    # shellcheck disable=SC2086 # split "containerd <module> <version> ..." into words on purpose
    set -- $fc_v
    fc_v=${3:-}
    fc_v=${fc_v#v}
    case ${fc_v%%.*} in 1|2) CTRD_MAJOR=${fc_v%%.*} ;; esac
}
# wsf_v: a config file's top-level `version` (before the first table header; absent: 1, containerd's rule).
version_of() {  # file
    wsf_v=1
    while IFS= read -r vo_line || [ -n "$vo_line" ]; do
        strip_blanks "$vo_line"
        case $wsf_s in
            '['*) break ;;
            version*=*)
                strip_blanks "${wsf_s#version}"
                case $wsf_s in
                    =*) strip_blanks "${wsf_s#=}"; vo_v=${wsf_s%%[!0-9]*}
                        if [ -n "$vo_v" ]; then wsf_v=$vo_v; fi ;;
                esac ;;
        esac
    done < "$1"
}
# Can the containerd on PATH read a config of this version? (1.x takes `version = 3` without reading it.)
can_ask() {  # version
    case $CTRD_MAJOR.$1 in 1.1|1.2|2.1|2.2|2.3|2.4) return 0 ;; esac
    return 1
}
# The files a config's `imports` names that exist, resolved as containerd resolves them (relative to the file's
# folder, globs expanded), appended one per line to OUT.
imports_of() {  # file out
    io_dir=$(dirname -- "$1") io_in=0 io_text=
    while IFS= read -r io_line || [ -n "$io_line" ]; do
        strip_blanks "$io_line"
        if [ "$io_in" = 0 ]; then
            case $wsf_s in
                '['*) break ;;
                imports*=*)
                    strip_blanks "${wsf_s#imports}"
                    case $wsf_s in =*) io_in=1; strip_blanks "${wsf_s#=}"; io_text=$wsf_s ;; *) continue ;; esac ;;
                *) continue ;;
            esac
        else
            case $wsf_s in '#'*) continue ;; esac
            io_text="$io_text $wsf_s"
        fi
        case $io_text in *']'*) break ;; esac
    done < "$1"
    io_text=${io_text#\[}
    io_text=${io_text%%]*}
    while [ -n "$io_text" ]; do
        io_item=${io_text%%,*}
        case $io_text in *,*) io_text=${io_text#*,} ;; *) io_text= ;; esac
        strip_blanks "$io_item"
        io_item=${wsf_s#[\"\']}
        io_item=${io_item%[\"\']}
        if [ -z "$io_item" ]; then continue; fi
        case $io_item in /*) ;; *) io_item=$io_dir/$io_item ;; esac
        # shellcheck disable=SC2086 # the import is a glob pattern: expand it on purpose
        for io_f in $io_item; do
            if [ -f "$io_f" ]; then printf '%s\n' "$io_f" >> "$2"; fi
        done
    done
}
# $WORK/files: every file containerd loads for a config, the file first, then its imports (and theirs).
loaded_files() {  # file
    printf '%s\n' "$1" > "$WORK/files"
    printf '%s\n' "$1" > "$WORK/files.todo"
    lf_n=0
    while [ -s "$WORK/files.todo" ] && [ "$lf_n" -lt 64 ]; do
        lf_n=$((lf_n + 1))
        IFS= read -r lf_f < "$WORK/files.todo"
        tail -n +2 "$WORK/files.todo" > "$WORK/files.rest"
        mv -f -- "$WORK/files.rest" "$WORK/files.todo"
        : > "$WORK/files.new"
        imports_of "$lf_f" "$WORK/files.new"
        while IFS= read -r lf_i; do
            lf_seen=0
            while IFS= read -r lf_s; do
                if [ "$lf_s" = "$lf_i" ]; then lf_seen=1; break; fi
            done < "$WORK/files"
            if [ "$lf_seen" = 0 ]; then
                printf '%s\n' "$lf_i" >> "$WORK/files"
                printf '%s\n' "$lf_i" >> "$WORK/files.todo"
            fi
        done < "$WORK/files.new"
    done
}
# Does a file define a table of one of the handlers (under any runtimes table) or, with what=cri, any table of
# containerd 1.x's CRI plugin? Sets wsf_hit to "line N (...)" of the first.
defines() {  # file "handler ..." what(handlers|cri)
    df_n=0 df_cur=
    while IFS= read -r df_line || [ -n "$df_line" ]; do
        df_n=$((df_n + 1))
        strip_blanks "$df_line"
        df_t=$wsf_s
        case $df_t in
            ''|'#'*) continue ;;
            '['*) df_cur=${df_t#[}; df_cur=${df_cur#[}; df_cur=${df_cur%%]*}; df_key=$df_cur ;;
            *=*) df_key=${df_cur:+$df_cur.}${df_t%%=*} ;;
            *) continue ;;
        esac
        if [ "$3" = cri ]; then
            case $df_key in *cri*) ;; *) continue ;; esac
            key_norm "$df_key"
            case $wsf_key in
                'plugins."io.containerd.grpc.v1.cri"'|'plugins."io.containerd.grpc.v1.cri".'*|plugins.cri|plugins.cri.*)
                    wsf_hit="line $df_n ([${df_cur}])"; return 0 ;;
            esac
            continue
        fi
        for df_h in $2; do
            case $df_t in *"$df_h"*) ;; *) continue ;; esac
            key_norm "$df_key"
            for df_v in 1 2 3; do
                table_of "$df_v"
                case $wsf_key in
                    "$wsf_table.$df_h"|"$wsf_table.$df_h".*) wsf_hit="line $df_n (handler $df_h)"; return 0 ;;
                esac
            done
        done
    done < "$1"
    return 1
}
# DROPIN_HIT: the first file containerd loads besides OWN and the loaded config itself that defines a table of
# one of the handlers (containerd merges drop-ins over the main file: that table would override ours).
dropin_defs() {  # own-file "handler ..."
    DROPIN_HIT=
    [ -n "$2" ] || return 0
    dd_first=1
    while IFS= read -r dd_f; do
        if [ "$dd_first" = 1 ]; then dd_first=0; continue; fi
        if [ "$dd_f" = "$1" ]; then continue; fi
        if defines "$dd_f" "$2" handlers; then DROPIN_HIT="$dd_f $wsf_hit"; return 0; fi
    done < "$WORK/files"
}
# Why containerd does not read handler H with its runtime_type from a config it loads: wsf_why ("" if unknown).
explain() {  # handler
    wsf_why=
    dropin_defs "${CFG:-}" "$1"
    if [ -n "$DROPIN_HIT" ]; then
        wsf_why="; the drop-in $DROPIN_HIT defines that handler too, and containerd merges it over ours"
        return 0
    fi
    if [ "$CTRD_MAJOR" = 1 ]; then
        ex_first=1
        while IFS= read -r ex_f; do
            if [ "$ex_first" = 1 ]; then ex_first=0; continue; fi
            if [ "$ex_f" != "${CFG:-}" ] && defines "$ex_f" "" cri; then
                wsf_why="; the drop-in $ex_f $wsf_hit replaces the whole CRI plugin section when containerd 1.x imports it, ours included: move its settings into the main config or remove it"
                return 0
            fi
        done < "$WORK/files"
    fi
}
# Every runtime of a `config dump` (kind dump: only the runtimes table of the CRI plugin that containerd uses,
# by the dump's version) or of a config file (kind file: any runtimes table) as lines "name=runtime_type".
dump_runtimes() {  # file out kind(dump|file)
    dr_cur=
    dr_want=
    if [ "$3" = dump ]; then
        version_of "$1"
        if [ "$wsf_v" -ge 3 ]; then table_of 3; else table_of 2; fi
        dr_want=$wsf_table
    fi
    : > "$2"
    while IFS= read -r dr_line || [ -n "$dr_line" ]; do
        strip_blanks "$dr_line"
        case $wsf_s in
            '['*'.runtimes.'*']')
                dr_cur=
                dr_k=${wsf_s#[}
                dr_k=${dr_k%]}
                key_norm "$dr_k"
                dr_p=${wsf_key%.*}
                dr_n=${wsf_key##*.}
                case $dr_p in
                    *.containerd.runtimes) ;;
                    *) continue ;;
                esac
                if [ -n "$dr_want" ] && [ "$dr_p" != "$dr_want" ]; then continue; fi
                dr_n=${dr_n#\"}
                dr_cur=${dr_n%\"}
                echo "$dr_cur=" >> "$2" ;;
            '['*) dr_cur= ;;
            runtime_type*=*)
                if [ -n "$dr_cur" ]; then
                    strip_blanks "${wsf_s#*=}"
                    dr_t=${wsf_s#[\"\']}
                    echo "$dr_cur=${dr_t%[\"\']}" >> "$2"
                fi ;;
        esac
    done < "$1"
}
has_runtime() {  # list-file name runtime_type ("" = any)
    while IFS= read -r hr_line; do
        case $hr_line in
            "$2=$3") return 0 ;;
            "$2="*) if [ -z "$3" ]; then return 0; fi ;;
        esac
    done < "$1"
    return 1
}
# `containerd config dump` of a config; DUMP_ERR says why not.
dump_of() {  # config out
    DUMP_ERR=
    if containerd --config "$1" config dump > "$2" 2>"$WORK/dump.err"; then return 0; fi
    DUMP_ERR=$(tail -n 1 "$WORK/dump.err")
    return 1
}
# Ask containerd how it reads a candidate config (a file beside the one it stands for, so that relative imports
# resolve the same): on install every handler must come out with its runtime_type, on removal none of ours, and
# every other runtime of the current config (runc!) must survive (field notes trap 6b). CHECK_ERR says why not.
check_candidate() {  # candidate mode(install|remove)
    CHECK_ERR=
    loaded_files "$1"
    if ! dump_of "$1" "$WORK/new.dump"; then CHECK_ERR="containerd rejects it: $DUMP_ERR"; return 1; fi
    dump_runtimes "$WORK/new.dump" "$WORK/new.rt" dump
    if [ "$2" = install ]; then
        for cc_pair in $HANDLERS; do
            if ! has_runtime "$WORK/new.rt" "${cc_pair%%=*}" "${cc_pair#*=}"; then
                explain "${cc_pair%%=*}"
                CHECK_ERR="containerd does not read handler ${cc_pair%%=*} with runtime_type ${cc_pair#*=} from it$wsf_why"
                return 1
            fi
        done
    else
        for cc_h in $SCAN_OURS; do
            if has_runtime "$WORK/new.rt" "$cc_h" ""; then
                explain "$cc_h"
                CHECK_ERR="containerd still reads handler $cc_h from it without our block$wsf_why"
                return 1
            fi
        done
    fi
    if [ -s "$WORK/orig.dump" ]; then
        while IFS= read -r cc_line; do
            cc_h=${cc_line%%=*}
            case "$SCAN_OURS $HANDLER_NAMES " in *" $cc_h "*) continue ;; esac
            if ! has_runtime "$WORK/new.rt" "$cc_h" ""; then
                CHECK_ERR="it would lose runtime $cc_h"
                cc_def=0
                while IFS= read -r cc_f; do
                    if defines "$cc_f" "$cc_h" handlers; then cc_def=1; break; fi
                done < "$WORK/files"
                if [ "$cc_def" = 0 ]; then
                    CHECK_ERR="$CHECK_ERR, which comes from containerd's built-in defaults and which this containerd drops once the file defines runtimes of its own; declare $cc_h in the file (as 'containerd config default' prints it), then re-run"
                fi
                return 1
            fi
        done < "$WORK/orig.rt"
        # Nothing else containerd reads may change: a runtime that survives by name only (runc from containerd's
        # defaults, its options gone) is lost just the same.
        strip_ours "$WORK/orig.dump" "$WORK/orig.rest"
        strip_ours "$WORK/new.dump" "$WORK/new.rest"
        cc_n=0
        while :; do
            cc_a='' cc_b=''
            cc_ea=0 cc_eb=0
            IFS= read -r cc_a <&3 || cc_ea=1
            IFS= read -r cc_b <&4 || cc_eb=1
            cc_n=$((cc_n + 1))
            if [ "$cc_ea$cc_eb" = 11 ]; then break; fi
            if [ "$cc_ea$cc_eb" != 00 ] || [ "$cc_a" != "$cc_b" ]; then
                strip_blanks "${cc_a:-$cc_b}"
                CHECK_ERR="it would change what containerd reads besides our handlers (line $cc_n of the dump without them: '$wsf_s')"
                return 1
            fi
        done 3< "$WORK/orig.rest" 4< "$WORK/new.rest"
    fi
}
# A `config dump` without the tables of our handlers (SCAN_OURS and HANDLER_NAMES) and without the top-level
# `imports` (containerd 1.x lists there the files it loaded, the candidate's own name among them).
strip_ours() {  # dump out
    so_skip=0 so_top=1
    : > "$2"
    while IFS= read -r so_line || [ -n "$so_line" ]; do
        strip_blanks "$so_line"
        case $wsf_s in
            '['*)
                so_top=0 so_skip=0
                case $wsf_s in
                    *.runtimes.*)
                        so_k=${wsf_s#[}
                        key_norm "${so_k%]}"
                        so_r=${wsf_key#*.containerd.runtimes.}
                        if [ "$so_r" != "$wsf_key" ]; then
                            case "$SCAN_OURS $HANDLER_NAMES " in *" ${so_r%%.*} "*) so_skip=1 ;; esac
                        fi ;;
                esac ;;
            imports*=*) if [ "$so_top" = 1 ]; then continue; fi ;;
        esac
        if [ "$so_skip" = 0 ]; then printf '%s\n' "$so_line" >> "$2"; fi
    done < "$1"
}
# The file beside FILE that a candidate for it is written to (same folder: relative imports resolve alike).
check_path() {  # file
    CHECK="$(dirname -- "$1")/.$(basename -- "$1").wsf-check"
}
# FB_BEGIN/FB_END/FB_BLANK: our block's markers in a file containerd loads (0: none), without the full scan.
find_block() {  # file
    FB_BEGIN=0 FB_END=0 FB_BLANK=0
    fb_n=0 fb_prev=0
    while IFS= read -r fb_line || [ -n "$fb_line" ]; do
        fb_n=$((fb_n + 1))
        if [ "$fb_line" = "$BEGIN_MARK" ] && [ "$FB_BEGIN" = 0 ]; then FB_BEGIN=$fb_n FB_BLANK=$fb_prev; fi
        if [ "$fb_line" = "$END_MARK" ] && [ "$FB_BEGIN" -gt 0 ]; then FB_END=$fb_n; break; fi
        if [ -z "$fb_line" ]; then fb_prev=1; else fb_prev=0; fi
    done < "$1"
    if [ "$FB_END" = 0 ]; then FB_BEGIN=0; fi
}
# The loaded (rendered) config as it would be with our block as in $WORK/tables (mode install) or without it.
loaded_candidate() {  # out mode
    find_block "$LOADED"
    if [ "$FB_BEGIN" -gt 0 ]; then
        {
            head -n $((FB_BEGIN - 1 - FB_BLANK)) -- "$LOADED"
            if [ "$2" = install ]; then write_block kept; fi
            tail -n +$((FB_END + 1)) -- "$LOADED"
        } > "$1" || die "cannot write $1 (disk full?); nothing was changed"
    else
        {
            cat -- "$LOADED"
            if [ "$2" = install ]; then
                if [ -s "$LOADED" ] && [ -n "$(tail -c 1 -- "$LOADED")" ]; then echo; fi
                write_block kept
            fi
        } > "$1" || die "cannot write $1 (disk full?); nothing was changed"
    fi
}

# ---------------------------------------------------------------------------------- restart and check
# The identity of containerd's socket: a containerd that restarts makes a new one.
sock_id() {
    stat -c '%i %Z' -- "$R$SOCKET" 2>/dev/null || echo none
}
restart_containerd() {  # sets RESTARTED to what really happened
    if [ "$WSF_RESTART" = ":" ]; then
        RESTARTED="containerd not restarted (WSF_RESTART is ':')"
        return 0
    fi
    if [ -z "$WSF_RESTART" ]; then
        # The distribution restarts containerd itself when the file changes (k0s watches the folder): wait for it.
        if [ "$FILE_CHANGED" = 0 ]; then
            RESTARTED="containerd not restarted: $CFG did not change in this run"
            return 0
        fi
        say "waiting for $FLAVOR to restart containerd (it watches $(dirname -- "$CFG"))"
        rc_end=$(( $(date +%s) + ${WSF_CONTAINERD_WAIT:-60} ))
        while [ "$(sock_id)" = "$SOCK_BEFORE" ]; do
            if [ "$(date +%s)" -ge "$rc_end" ]; then
                RESTART_ERR="$FLAVOR did not restart containerd within ${WSF_CONTAINERD_WAIT:-60}s of the change to $CFG"
                return 1
            fi
            sleep 1
        done
        RESTARTED="containerd restarted by $FLAVOR"
        return 0
    fi
    say "restarting containerd: $WSF_RESTART"
    # No stdin, output to a log (a daemon started here must not hold our stdout open), and not our lock fd.
    rc_status=0
    sh -c "$WSF_RESTART" </dev/null >"$WORK/restart.log" 2>&1 9>&- || rc_status=$?
    RESTARTED="containerd restarted"
    if [ "$rc_status" != 0 ]; then
        RESTART_ERR="the restart command failed (exit $rc_status)"
        rc_said=$(tail -n 1 "$WORK/restart.log" 2>/dev/null || true)
        if [ -n "$rc_said" ]; then RESTART_ERR="$RESTART_ERR: $rc_said"; fi
        return 1
    fi
}
# containerd answers on its socket and its CRI plugin loaded (via ctr when present, else the socket exists).
daemon_up() {
    [ "$WSF_RESTART" != ":" ] || return 0
    du_sock=$R$SOCKET
    du_end=$(( $(date +%s) + ${WSF_CONTAINERD_WAIT:-60} ))
    while :; do
        if command -v ctr >/dev/null 2>&1; then
            if ctr --address "$du_sock" --connect-timeout 2s plugins ls > "$WORK/plugins" 2>/dev/null; then
                while read -r du_type du_id du_pl du_st; do
                    if [ "$du_type" = io.containerd.grpc.v1 ] && [ "$du_id" = cri ]; then
                        case ${du_st:-$du_pl} in
                            ok) return 0 ;;
                            *) RESTART_ERR="containerd's CRI plugin did not load (ctr plugins ls: ${du_st:-$du_pl})"; return 1 ;;
                        esac
                    fi
                done < "$WORK/plugins"
                RESTART_ERR="containerd has no CRI plugin (ctr plugins ls)"
                return 1
            fi
        elif [ -S "$du_sock" ]; then
            return 0
        fi
        if [ "$(date +%s)" -ge "$du_end" ]; then
            RESTART_ERR="containerd did not answer on $du_sock within ${WSF_CONTAINERD_WAIT:-60}s"
            return 1
        fi
        sleep 1
    done
}
# After the restart: the daemon is up, the config it loads (with every drop-in it imports) has every handler
# with its runtime_type (or none of ours, after a removal) and every handler's shim binary is in place.
verify_loaded() {  # mode(install|remove)
    daemon_up || return 1
    if [ "$1" = install ]; then
        for vl_b in $SHIM_BINARIES; do
            if [ ! -x "$BIN/$vl_b" ]; then RESTART_ERR="shim binary $BIN/$vl_b is missing"; return 1; fi
        done
    fi
    if [ "$TEMPLATE" = 1 ] && [ "$WSF_RESTART" = ":" ]; then
        say "not checking $LOADED: $FLAVOR renders it from the template only when it restarts"
        return 0
    fi
    if [ ! -f "$LOADED" ]; then RESTART_ERR="$LOADED does not exist after the restart"; return 1; fi
    loaded_files "$LOADED"
    version_of "$LOADED"
    if can_ask "$wsf_v"; then
        if ! dump_of "$LOADED" "$WORK/loaded.dump"; then RESTART_ERR="containerd rejects $LOADED: $DUMP_ERR"; return 1; fi
        dump_runtimes "$WORK/loaded.dump" "$WORK/loaded.rt" dump
        vl_who="containerd does not read" vl_still="containerd still reads"
    else
        # No containerd here to ask: the loaded file's text, and no drop-in may define one of our handlers.
        dump_runtimes "$LOADED" "$WORK/loaded.rt" file
        vl_who="$LOADED does not name" vl_still="$LOADED still names"
        if [ "$1" = install ]; then dropin_defs "$CFG" "$HANDLER_NAMES"; else dropin_defs "$CFG" "$SCAN_OURS"; fi
        if [ -n "$DROPIN_HIT" ]; then
            RESTART_ERR="the drop-in $DROPIN_HIT, which containerd loads with $LOADED, defines one of our handlers"
            return 1
        fi
    fi
    if [ "$1" = install ]; then
        for vl_pair in $HANDLERS; do
            if ! has_runtime "$WORK/loaded.rt" "${vl_pair%%=*}" "${vl_pair#*=}"; then
                explain "${vl_pair%%=*}"
                RESTART_ERR="$vl_who handler ${vl_pair%%=*} with runtime_type ${vl_pair#*=} from $LOADED after the restart$wsf_why"
                return 1
            fi
        done
    else
        for vl_h in $SCAN_OURS; do
            if has_runtime "$WORK/loaded.rt" "$vl_h" ""; then
                explain "$vl_h"
                RESTART_ERR="$vl_still handler $vl_h from $LOADED after the restart$wsf_why"
                return 1
            fi
        done
    fi
    # crictl, when present, shows what the running CRI plugin really loaded.
    if [ "$1" = install ] && [ "$WSF_RESTART" != ":" ] && command -v crictl >/dev/null 2>&1; then
        if crictl --runtime-endpoint "unix://$R$SOCKET" info > "$WORK/crictl" 2>/dev/null; then
            for vl_pair in $HANDLERS; do
                vl_h=${vl_pair%%=*}
                vl_found=0
                while IFS= read -r vl_line; do
                    case $vl_line in *"\"$vl_h\": {"*) vl_found=1; break ;; esac
                done < "$WORK/crictl"
                if [ "$vl_found" = 0 ]; then RESTART_ERR="crictl info does not list handler $vl_h"; return 1; fi
            done
        fi
    fi
}
# Put the last verified config back and restart containerd on it, then fail with the reason.
rollback() {  # reason
    say "rolling back: $1"
    SOCK_BEFORE=$(sock_id)
    FILE_CHANGED=1
    if [ -f "$STATE/config.prev.absent" ]; then
        rm -f -- "$CFG"
    elif [ -f "$STATE/config.prev" ]; then
        replace_file "$STATE/config.prev" "$CFG"
    fi
    if restart_containerd && daemon_up; then
        rm -f -- "$STATE/config.prev" "$STATE/config.prev.absent" "$STATE/config.next.sha256"
        die "$1; restored the previous config and restarted containerd on it"
    fi
    rm -f -- "$STATE/config.prev" "$STATE/config.prev.absent" "$STATE/config.next.sha256"
    die "$1; restored the previous config, but containerd did not come back on it either ($RESTART_ERR): check the node"
}
# Remember the config as it is now (the last verified one) before replacing it. A copy left by an
# interrupted run is older and verified: it stays.
save_prev() {
    if [ -f "$STATE/config.prev" ] || [ -f "$STATE/config.prev.absent" ]; then return 0; fi
    if [ -f "$CFG" ]; then
        save_copy "$CFG" "$STATE/config.prev"
    else
        : > "$STATE/config.prev.absent" || die "cannot write $STATE (disk full?); nothing was changed"
    fi
    # The first block ever added: keep the untouched original for the operator (and the uninstall check).
    if [ "$SCAN_BEGIN" = 0 ] && [ ! -f "$STATE/config.orig" ] && [ -f "$CFG" ]; then
        save_copy "$CFG" "$STATE/config.orig"
    fi
}
save_copy() {  # src dest
    if ! cp -p -- "$1" "$2.wsf-tmp" 2>"$WORK/write.err"; then
        rm -f -- "$2.wsf-tmp"
        die "cannot save $1 to $2: $(tail -n 1 "$WORK/write.err"); nothing was changed"
    fi
    sync_file "$2.wsf-tmp"
    mv -f -- "$2.wsf-tmp" "$2" || die "cannot rename $2.wsf-tmp"
}

# Write the new config beside the real one (same folder, so the rename is atomic), with its mode and owner.
stage_config() {  # new-content; sets STAGED
    STAGED="$(dirname -- "$CFG")/.$(basename -- "$CFG").wsf-tmp"
    (umask 022; mkdir -p -- "$(dirname -- "$CFG")") || die "cannot create the folder of $CFG"
    if [ -f "$CFG" ] && ! cp -p -- "$CFG" "$STAGED" 2>"$WORK/write.err"; then
        rm -f -- "$STAGED"
        die "cannot write $STAGED: $(tail -n 1 "$WORK/write.err"); nothing was changed"
    fi
    if ! cat -- "$1" > "$STAGED" 2>"$WORK/write.err"; then
        rm -f -- "$STAGED"
        die "cannot write $STAGED: $(tail -n 1 "$WORK/write.err"); nothing was changed"
    fi
    # A file the kit creates (a template, a drop-in) gets the mode distributions give theirs; it holds only the
    # handler table. An existing file keeps its own (cp -p above).
    if [ ! -f "$CFG" ]; then chmod 0644 "$STAGED" || die "cannot chmod $STAGED; nothing was changed"; fi
    sync_file "$STAGED"
    # What this run is about to write: a later run that finds config.prev tells this run's file from an edit.
    put_state "$STATE/config.next.sha256" "$(sha256_of "$STAGED")"
}
# A config.prev (or .absent) left by an interrupted run stays the rollback target only while the config is what
# that run left: the file it saved, or the one it was writing. Anything else is an operator's edit since, and
# putting the old copy back on a failure would undo it: the copy goes, and the file as it is now is kept instead.
check_prev() {
    [ -f "$STATE/config.prev" ] || [ -f "$STATE/config.prev.absent" ] || return 0
    cp_now=absent
    if [ -f "$CFG" ]; then cp_now=$(sha256_of "$CFG"); fi
    cp_saved=absent
    if [ -f "$STATE/config.prev" ]; then cp_saved=$(sha256_of "$STATE/config.prev"); fi
    cp_next=$(cat -- "$STATE/config.next.sha256" 2>/dev/null || true)
    if [ "$cp_now" = "$cp_saved" ] || [ "$cp_now" = "$cp_next" ]; then return 0; fi
    say "$CFG was changed since an interrupted run saved $STATE/config.prev: that older copy is dropped, and the file as it is now is what a failure puts back"
    rm -f -- "$STATE/config.prev" "$STATE/config.prev.absent" "$STATE/config.next.sha256"
}

# --------------------------------------------------------------------------------------- the table
# The version of the loaded config (ASK_V, "" when it does not exist yet) and whether the containerd on PATH
# reads a config of that version (ASK=1).
loaded_version() {
    ASK_V='' ASK=0
    [ -f "$LOADED" ] || return 0
    version_of "$LOADED"
    ASK_V=$wsf_v
    if can_ask "$ASK_V"; then ASK=1; fi
}
# The runtimes containerd reads from the loaded config now ($WORK/orig.rt, our own handlers included); a
# containerd that cannot read it is not asked (ASK=0).
ask_dump() {
    : > "$WORK/orig.rt"
    [ "$ASK" = 1 ] || return 0
    loaded_files "$LOADED"
    if dump_of "$LOADED" "$WORK/orig.dump"; then
        dump_runtimes "$WORK/orig.dump" "$WORK/orig.rt" dump
    else
        say "the containerd on PATH cannot read $LOADED ($DUMP_ERR): deciding from its version line"
        ASK=0
    fi
}
# CREATE_BASE with `{version}` replaced by a config version.
base_for() {  # version; sets wsf_base
    wsf_base=$CREATE_BASE
    case $wsf_base in *'{version}'*) wsf_base="${wsf_base%%\{version\}*}$1${wsf_base#*\{version\}}" ;; esac
}
# $WORK/tables and $WORK/config.new (the file we write, everything outside our block byte for byte, our block
# (re)written at the end) with the runtimes table of config version T.
candidate_of() {  # T
    table_of "$1"
    RUNTIMES_TABLE=$wsf_table
    render_tables > "$WORK/tables" || die "cannot write $WORK/tables (disk full?)"
    TABLE_SHA256=$(sha256_of "$WORK/tables")
    co_new=$WORK/config.new
    if [ "$at_kind" = created ]; then
        base_for "$1"
        { printf '%s\n' "$wsf_base"; write_block created; } > "$co_new" || die "cannot write $co_new (disk full?)"
    elif [ "$SCAN_BEGIN" -gt 0 ]; then
        {
            head -n $((SCAN_BEGIN - 1 - SCAN_BLANK)) -- "$CFG"
            write_block "${SCAN_ORIGINAL:-kept}"
            tail -n +$((SCAN_END + 1)) -- "$CFG"
        } > "$co_new" || die "cannot write $co_new (disk full?)"
    else
        {
            cat -- "$CFG"
            if [ "$at_kind" = no-final-newline ]; then echo; fi
            write_block "$at_kind"
        } > "$co_new" || die "cannot write $co_new (disk full?)"
    fi
}
# A candidate written beside the file it stands for, asked of containerd (check_candidate).
ask_candidate() {  # mode(install|remove)
    if [ "$TEMPLATE" = 0 ]; then
        check_path "$CFG"
        cat -- "$WORK/config.new" > "$CHECK" 2>"$WORK/write.err" ||
            { rm -f -- "$CHECK"; die "cannot write $CHECK: $(tail -n 1 "$WORK/write.err"); nothing was changed"; }
    else
        check_path "$LOADED"
        loaded_candidate "$CHECK" "$1"
    fi
    ac_rc=0
    check_candidate "$CHECK" "$1" || ac_rc=$?
    rm -f -- "$CHECK"
    return "$ac_rc"
}
# Where the runtimes table goes, asked of the containerd that reads the loaded config (its `config dump`), not
# of the version line alone. TABLES are the tables the flavor may write, its own first; of those, the ones
# containerd could read in a file of this version (CT_CANDS) are tried on a candidate, and the first under which
# it reads every handler with its runtime_type and loses no runtime is taken: containerd 2.x reads a version 2
# file's runtimes from io.containerd.grpc.v1.cri after migrating it, or from io.containerd.cri.v1.runtime as
# written (AKS's containerd 2 config), and drops the first when the second holds runtimes. Without a containerd
# to ask, the version line decides, and a version 2 file that uses containerd 2.x plugin ids is refused: only
# containerd can say where it reads that file's runtimes.
table_candidates() {
    CT_CANDS=
    for ct_t in $TABLES; do
        if [ -z "$ASK_V" ]; then CT_CANDS=$ct_t; break; fi  # not rendered yet: the flavor's own table
        case $ct_t.$ASK_V in
            1.1|2.2|3.3|3.4) CT_CANDS="$CT_CANDS $ct_t" ;;
            3.2) if [ "$ASK" = 1 ] && [ "$CTRD_MAJOR" = 2 ]; then CT_CANDS="$CT_CANDS $ct_t"; fi ;;
        esac
    done
    if [ -z "$CT_CANDS" ]; then
        if [ "$TEMPLATE" = 1 ]; then
            die "$LOADED (rendered by $FLAVOR) is config version $ASK_V, but flavor $FLAVOR writes version $CONFIG_VERSION tables into $CFG; set the pool's containerd to $(fits "$ASK_V")"
        fi
        die "$CFG is containerd config version $ASK_V, but flavor $FLAVOR writes version $CONFIG_VERSION tables; set the pool's containerd to $(fits "$ASK_V")"
    fi
    if [ "$DROPIN" = 1 ]; then
        # A drop-in follows the version of the config that imports it (containerd 2.3.0-2.3.4 refuse a higher one).
        for ct_t in $CT_CANDS; do
            case $ct_t.$ASK_V in 1.1|2.2|3.3|3.4) CT_CANDS=$ct_t; break ;; esac
        done
    fi
    case $ASK.$ASK_V.$CT_CANDS in
        0.2.2*|0.2.\ 2*)
            if uses_2x_ids "$LOADED"; then
                die "$LOADED says config version 2 but uses containerd 2.x plugin ids ($wsf_hit): containerd 2.x reads its runtimes from io.containerd.cri.v1.runtime and 1.x never does, and no containerd on this node's PATH reads the file to say which one this node runs; put the node's containerd on PATH (containerd --version), then re-run; nothing was changed"
            fi ;;
    esac
}
choose_table() {
    # shellcheck disable=SC2086 # the candidates are words
    set -- $CT_CANDS
    if [ "$ASK" = 0 ] || [ "$DROPIN" = 1 ]; then
        candidate_of "$1"
        CHOSEN=version
        return 0
    fi
    ct_err='' ct_first=''
    for ct_t in "$@"; do
        candidate_of "$ct_t"
        if ask_candidate install; then CHOSEN=containerd; return 0; fi
        if [ -z "$ct_first" ]; then ct_first=$RUNTIMES_TABLE ct_err=$CHECK_ERR; fi
    done
    ct_hint=
    case " $TABLES " in
        *" 3 "*) ;;
        *)
            if [ "$ASK_V" = 2 ] && [ "$CTRD_MAJOR" = 2 ]; then
                candidate_of 3
                if ask_candidate install; then
                    ct_hint="; containerd 2.x reads this version 2 file's runtimes from io.containerd.cri.v1.runtime: set the pool's containerd to containerd-2"
                fi
            fi ;;
    esac
    die "refusing to add the handler table: with our tables under [$ct_first] in $CFG, $ct_err (containerd config dump of $LOADED)$ct_hint; nothing was changed"
}
# Does a config use containerd 2.x plugin ids (io.containerd.cri.v1.*)? wsf_hit: "line N ([table])".
uses_2x_ids() {  # file
    u2_n=0
    while IFS= read -r u2_line || [ -n "$u2_line" ]; do
        u2_n=$((u2_n + 1))
        strip_blanks "$u2_line"
        case $wsf_s in
            '['*io.containerd.cri.v1.*) wsf_hit="line $u2_n: $wsf_s"; return 0 ;;
        esac
    done < "$1"
    return 1
}
# A table of ours that something else defines where containerd loads it: in the loaded (rendered) config
# outside our block, or in a drop-in it imports. Refused before anything changes.
foreign_defs() {  # what ("add the handler table" | "remove the handler table") "handler ..."
    [ -f "$LOADED" ] || return 0
    if [ "$LOADED" != "$CFG" ]; then
        fd_clash=$(scan_config "$LOADED"; printf '%s' "$SCAN_CLASH")
        if [ -n "$fd_clash" ]; then
            die "refusing to $1: $LOADED, which $FLAVOR renders, already defines $fd_clash outside the wasm-shim-fleet block (containerd refuses a table defined twice); remove it or drop the handler from the pool; nothing was changed"
        fi
    fi
    loaded_files "$LOADED"
    dropin_defs "$CFG" "$2"
    if [ -n "$DROPIN_HIT" ]; then
        die "refusing to $1: the drop-in $DROPIN_HIT, which containerd loads with $LOADED, defines that handler's table too and containerd merges it over ours; remove that table from the drop-in or drop the handler from the pool; nothing was changed"
    fi
}
apply_table() {
    config_paths
    check_prev
    find_containerd
    at_kind=kept
    if [ -f "$CFG" ]; then
        scan_config "$CFG"
        check_scan "$CFG" "add the handler table"
        if [ "$SCAN_BEGIN" = 0 ] && [ -s "$CFG" ] && [ -n "$(tail -c 1 -- "$CFG")" ]; then at_kind=no-final-newline; fi
    elif [ -n "$CREATE_BASE" ]; then
        at_kind=created
        SCAN_BEGIN=0 SCAN_END=0 SCAN_BLANK=0 SCAN_ORIGINAL='' SCAN_OURS=' ' SCAN_CLASH='' SCAN_TABLE_V=''
    else
        die "$CFG does not exist; a config holding only our tables would drop containerd's built-in runc: create it with 'containerd config default > $CFG', restart containerd, then re-run"
    fi
    loaded_version
    table_candidates
    for at_b in $SHIM_BINARIES; do
        [ -x "$BIN/$at_b" ] || die "shim binary $BIN/$at_b is not installed; install the binaries before the handler table"
    done
    foreign_defs "add the handler table" "$HANDLER_NAMES"
    at_recorded=$(cat -- "$STATE/table.sha256" 2>/dev/null || true)
    at_cur_hash=
    if [ -f "$CFG" ]; then at_cur_hash=$(sha256_of "$CFG"); fi
    # Nothing to do when our block is as it should be under the table it already uses and was verified.
    CHOSEN=
    if [ "$SCAN_BEGIN" -gt 0 ] && [ -n "$SCAN_TABLE_V" ]; then
        case " $TABLES " in
            *" $SCAN_TABLE_V "*)
                candidate_of "$SCAN_TABLE_V"
                if [ "$(sha256_of "$WORK/config.new")" = "$at_cur_hash" ] && [ "$at_recorded" = "$TABLE_SHA256" ] &&
                    [ ! -f "$STATE/config.prev" ] && [ ! -f "$STATE/config.prev.absent" ]; then
                    say "the handler table in $CFG is up to date"
                    return 0
                fi ;;
        esac
    fi
    ask_dump
    if [ "$ASK" = 0 ]; then table_candidates; fi
    choose_table
    at_new=$WORK/config.new
    at_new_hash=$(sha256_of "$at_new")
    FILE_CHANGED=0
    if [ "$at_new_hash" = "$at_cur_hash" ]; then
        if [ "$at_recorded" = "$TABLE_SHA256" ] && [ ! -f "$STATE/config.prev" ] && [ ! -f "$STATE/config.prev.absent" ]; then
            say "the handler table in $CFG is up to date"
            return 0
        fi
        say "$CFG has the handler table, but no run verified containerd on it (an earlier run was interrupted)"
    else
        case $CHOSEN in
            containerd) say "containerd reads the new config (config dump)" ;;
            *)
                if [ "$DROPIN" = 1 ]; then
                    say "not validating $CFG before the change: $FLAVOR has containerd import it when it restarts containerd"
                elif [ "$TEMPLATE" = 1 ]; then
                    say "not validating $CFG: it is a template that the distribution renders when it restarts"
                else
                    say "not validating: no containerd on PATH that reads config version ${ASK_V:-$CONFIG_VERSION}"
                fi ;;
        esac
        stage_config "$at_new"
        step config-staged
        save_prev
        step config-saved
        SOCK_BEFORE=$(sock_id)
        mv -f -- "$STAGED" "$CFG" || die "cannot rename $STAGED to $CFG"
        STAGED=
        sync_file "$(dirname -- "$CFG")"
        CHANGED=1
        FILE_CHANGED=1
        step config-written "wrote the handler table to $CFG"
    fi
    RESTART_ERR=
    restart_containerd || rollback "$RESTART_ERR"
    step containerd-restarted "$RESTARTED"
    verify_loaded install || rollback "$RESTART_ERR"
    if [ "$WSF_RESTART" = ":" ]; then
        step table-verified "$LOADED names every handler"
    else
        step table-verified "containerd loaded every handler"
    fi
    put_state "$STATE/table.sha256" "$TABLE_SHA256"
    rm -f -- "$STATE/config.prev" "$STATE/config.prev.absent" "$STATE/config.next.sha256"
    if [ "$CHANGED" = 1 ] || [ "$at_recorded" != "$TABLE_SHA256" ]; then CHANGED=1; fi
}
remove_table() {
    config_paths
    check_prev
    find_containerd
    if [ ! -f "$CFG" ]; then
        say "$CFG does not exist: no handler table to remove"
        rm -f -- "$STATE/table.sha256" "$STATE/config.orig" "$STATE/config.prev" "$STATE/config.prev.absent" "$STATE/config.next.sha256"
        return 0
    fi
    scan_config "$CFG"
    SCAN_CLASH=  # a table of the same name elsewhere in the file is not ours to remove, and stays
    check_scan "$CFG" "remove the handler table"
    FILE_CHANGED=0
    if [ "$SCAN_BEGIN" = 0 ]; then
        if [ ! -f "$STATE/config.prev" ] && [ ! -f "$STATE/config.prev.absent" ]; then
            say "$CFG has no wasm-shim-fleet handler table"
            rm -f -- "$STATE/table.sha256" "$STATE/config.orig"
            return 0
        fi
        say "$CFG has no handler table, but no run verified containerd without it (an earlier run was interrupted)"
    else
        if [ -f "$LOADED" ]; then
            loaded_files "$LOADED"
            dropin_defs "$CFG" "$SCAN_OURS"
            if [ -n "$DROPIN_HIT" ]; then
                die "refusing to remove the handler table: the drop-in $DROPIN_HIT, which containerd loads with $LOADED, defines one of our handlers, so containerd would keep serving it from there; remove that table from the drop-in, then re-run; nothing was changed"
            fi
        fi
        rt_new=$WORK/config.new
        without_block "$CFG" "$rt_new"
        rt_absent=0
        if [ "$SCAN_ORIGINAL" = created ]; then
            for rt_v in "$SCAN_TABLE_V" 1 2 3 4; do
                base_for "$rt_v"
                if [ "$(cat -- "$rt_new")" = "$wsf_base" ]; then rt_absent=1; break; fi
            done
        fi
        if [ "$rt_absent" = 0 ] && [ "$DROPIN" = 0 ]; then
            loaded_version
            ask_dump
            if [ "$ASK" = 1 ]; then
                ask_candidate remove || die "refusing to remove the handler table: without our block, $CHECK_ERR (containerd config dump of $LOADED); nothing was changed"
                say "containerd reads the config without our block (config dump)"
            fi
        fi
        SOCK_BEFORE=$(sock_id)
        if [ "$rt_absent" = 1 ]; then
            step config-staged "the file holds nothing but our block: it goes"
            put_state "$STATE/config.next.sha256" absent
            save_prev
            step config-saved
            rm -f -- "$CFG" || die "cannot remove $CFG"
        else
            stage_config "$rt_new"
            step config-staged
            save_prev
            step config-saved
            mv -f -- "$STAGED" "$CFG" || die "cannot rename $STAGED to $CFG"
            STAGED=
        fi
        sync_file "$(dirname -- "$CFG")"
        CHANGED=1
        FILE_CHANGED=1
        step config-written "removed the handler table from $CFG"
        if [ -f "$STATE/config.orig" ]; then
            if [ "$rt_absent" = 0 ] && [ "$(sha256_of "$CFG")" = "$(sha256_of "$STATE/config.orig")" ]; then
                say "$CFG is back to its original bytes"
            elif [ "$rt_absent" = 0 ]; then
                say "$CFG was edited outside our block since the install; those edits are kept"
            fi
        fi
    fi
    RESTART_ERR=
    restart_containerd || rollback "$RESTART_ERR"
    step containerd-restarted "$RESTARTED"
    verify_loaded remove || rollback "$RESTART_ERR"
    if [ "$WSF_RESTART" = ":" ]; then
        step table-verified "$LOADED names none of our handlers"
    else
        step table-verified "containerd runs without our handlers"
    fi
    rm -f -- "$STATE/table.sha256" "$STATE/config.orig" "$STATE/config.prev" "$STATE/config.prev.absent" "$STATE/config.next.sha256"
    CHANGED=1
}

# ------------------------------------------------------------------------------------------ the table
# The tables between the markers, from "handler=runtime_type" pairs in $HANDLERS (sorted by handler).
render_tables() {
    printf '%s\n' "# Written by wasm-shim-fleet; edits here are replaced on the next run and removed by uninstall." \
        "# Each runtime_type io.containerd.<name>.v1 runs the shim binary containerd-shim-<name>-v1 from PATH."
    for rt_pair in $HANDLERS; do
        rt_h=${rt_pair%%=*}
        rt_t=${rt_pair#*=}
        rt_n=${rt_t#io.containerd.}
        rt_n=${rt_n%.*}
        echo
        if [ "$rt_n" != "$rt_h" ]; then echo "# alias on this node: $rt_h -> $rt_n"; fi
        printf '[%s.%s]\n  runtime_type = "%s"\n' "$RUNTIMES_TABLE" "$rt_h" "$rt_t"
    done
}
set_handlers() {  # handler=runtime_type ...
    HANDLERS=
    HANDLER_NAMES=
    SHIM_BINARIES=
    for sh_pair in "$@"; do
        is_pair "$sh_pair" || refuse apply-table "$sh_pair" "handler=io.containerd.<name>.v<N> (handler and name: DNS labels)"
        sh_t=${sh_pair#*=}
        sh_n=${sh_t#io.containerd.}
        HANDLERS="$HANDLERS $sh_pair"
        HANDLER_NAMES="$HANDLER_NAMES ${sh_pair%%=*}"
        SHIM_BINARIES="$SHIM_BINARIES containerd-shim-${sh_n%.*}-${sh_n##*.}"
    done
    HANDLERS=${HANDLERS# }
    HANDLER_NAMES=${HANDLER_NAMES# }
    SHIM_BINARIES=${SHIM_BINARIES# }
}

# ------------------------------------------------------------------------------------- argument rules
# The kit is the boundary on the node: every value it is called with is held to the characters that belong in it,
# whoever wrote the calling script (the program, a break-glass script, a delete recorded in a state long ago).
# A value that breaks its rule stops the call before anything is read or written.
is_label() {  # a DNS label: [a-z0-9-], alphanumeric at both ends, at most 63
    case $1 in ''|-*|*-|*[!a-z0-9-]*) return 1 ;; esac
    [ "${#1}" -le 63 ]
}
is_digits() {
    case $1 in ''|*[!0-9]*) return 1 ;; esac
}
is_runtime_type() {  # io.containerd.<label>.v<N>
    case $1 in io.containerd.*.v*) ;; *) return 1 ;; esac
    ir_n=${1#io.containerd.}
    is_label "${ir_n%.v*}" && is_digits "${ir_n##*.v}" && [ "${#ir_n}" -le 80 ]
}
is_pair() {  # handler=runtime_type
    case $1 in *=*) ;; *) return 1 ;; esac
    is_label "${1%%=*}" && is_runtime_type "${1#*=}"
}
is_binary_name() {  # containerd-shim-<label>-v<N>
    case $1 in containerd-shim-*-v*) ;; *) return 1 ;; esac
    ib_n=${1#containerd-shim-}
    is_label "${ib_n%-v*}" && is_digits "${ib_n##*-v}"
}
is_sha256() {
    case $1 in *[!0-9a-f]*) return 1 ;; esac
    [ "${#1}" = 64 ]
}
is_rel_path() {  # an archive member: parts of [A-Za-z0-9._+-] between single '/', no '..', not absolute
    case $1 in ''|/*|*/|*//*|*[!A-Za-z0-9._+/-]*) return 1 ;; esac
    case /$1/ in */../*|*/./*) return 1 ;; esac
}
is_abs_path() {  # an absolute path of plain characters, no '.' or '..' part
    case $1 in /*) ;; *) return 1 ;; esac
    case $1 in *[!A-Za-z0-9._/-]*|*//*) return 1 ;; esac
    case $1/ in */../*|*/./*) return 1 ;; esac
}
is_url() {  # https://host[:port]/path or file:///path, of the characters a URL of ours may hold
    case $1 in
        https://*)
            iu_rest=${1#https://}
            iu_host=${iu_rest%%/*}
            [ "$iu_host" != "$iu_rest" ] || return 1
            case ${iu_host%:*} in ''|*[!A-Za-z0-9.-]*) return 1 ;; esac
            case $iu_host in *:*) is_digits "${iu_host##*:}" || return 1 ;; esac
            iu_path=/${iu_rest#*/} ;;
        file:///*) iu_path=${1#file://} ;;
        *) return 1 ;;
    esac
    case $iu_path in *[!A-Za-z0-9._~%/+:@=,-]*) return 1 ;; esac
    [ "${#1}" -le 2048 ]
}
# Say which value of which call breaks which rule, the value cut and made printable, then stop.
refuse() {  # verb value rule
    rf_v=$(printf '%s' "$2" | head -c 120 | tr -c '[:print:]' '?')
    die "$1: '$rf_v' is not $3; the calling script was not written by this program's rules: nothing was changed"
}
check_call() {  # verb values...
    cc_verb=$1
    shift
    case $cc_verb in
        install-binary)
            is_binary_name "${1:-}" || refuse install-binary "${1:-}" "a shim binary name containerd-shim-<name>-v<N>"
            is_url "${2:-}" || refuse install-binary "${2:-}" "an https:// or file:/// URL of plain characters"
            is_sha256 "${3:-}" || refuse install-binary "${3:-}" "a sha256 (64 lower-case hex digits)"
            if [ -n "${4:-}" ]; then
                is_rel_path "$4" || refuse install-binary "$4" "an archive member (a relative path without '..')"
            fi
            case ${5:-none} in version|none) ;; *) refuse install-binary "$5" "a probe (version or none)" ;; esac
            if [ -n "${6:-}" ]; then
                if ! { is_digits "$6" && [ "${#6}" -le 13 ]; }; then refuse install-binary "$6" "a size in bytes"; fi
            fi ;;
        remove-binary)
            is_binary_name "${1:-}" || refuse remove-binary "${1:-}" "a shim binary name containerd-shim-<name>-v<N>"
            is_runtime_type "${2:-}" || refuse remove-binary "${2:-}" "a runtime_type io.containerd.<name>.v<N>" ;;
        apply-table)
            for cc_pair in "$@"; do
                is_pair "$cc_pair" || refuse apply-table "$cc_pair" "handler=io.containerd.<name>.v<N> (handler and name: DNS labels)"
            done ;;
        prune-binaries)
            for cc_b in "$@"; do
                is_binary_name "$cc_b" || refuse prune-binaries "$cc_b" "a shim binary name containerd-shim-<name>-v<N>"
            done ;;
        status) [ $# = 0 ] || refuse status "$1" "no values" ;;
    esac
    for cc_path in "$CONFIG_PATH" "$LOADED_CONFIG" "$SOCKET"; do
        is_abs_path "$cc_path" || refuse "$FLAVOR" "$cc_path" "a plain absolute path (the flavor's files)"
    done
    case $WSF_NODE_ROOT in
        *[!A-Za-z0-9_./-]*) refuse WSF_NODE_ROOT "$WSF_NODE_ROOT" "a plain path (the node root)" ;;
    esac
    case /$WSF_NODE_ROOT/ in */../*) refuse WSF_NODE_ROOT "$WSF_NODE_ROOT" "a path without '..' (the node root)" ;; esac
}

# ------------------------------------------------------------------------------------------- main
# Kits other than the selected one: nothing refers to them (scripts go through `selected`).
prune_kits() {
    for pk_d in "$STATE"/kit/*/; do
        [ -d "$pk_d" ] || continue
        pk_d=${pk_d%/}
        if [ "${pk_d##*/}" != "${WSF_KIT:-}" ]; then rm -rf -- "$pk_d"; fi
    done
}
wsf() {  # call-version flavor verb args...
    if [ "$1" != 1 ]; then die "this node kit answers call version 1, not $1: deliver a newer kit (pulumi up)"; fi
    wsf_flavor "$2" || die "this node kit does not know the containerd flavor $2: deliver a newer kit (pulumi up)"
    wsf_verb=$3
    shift 3
    HANDLERS='' HANDLER_NAMES='' SHIM_BINARIES='' TABLE_SHA256=''
    check_call "$wsf_verb" "$@"
    wsf_init
    lock_acquire
    prune_kits
    case $wsf_verb in
        install-binary)
            # the probe (5th value) came with the kit's first change of call 1; without it: no probe. The size
            # limit (6th) is there only when the catalog entry sets one.
            case $# in 4) install_binary "$@" none ;; 5|6) install_binary "$@" ;; *) die "install-binary takes 5 or 6 values, not $#" ;; esac ;;
        remove-binary) [ $# = 2 ] || die "remove-binary takes 2 values, not $#"; config_paths; remove_binary "$@" ;;
        apply-table)
            set_handlers "$@"
            if [ -n "$HANDLERS" ]; then apply_table; else remove_table; fi ;;
        remove-table) [ $# = 0 ] || die "remove-table takes no values"; remove_table ;;
        prune-binaries) config_paths; prune_binaries "$@" ;;
        status) status_table ;;
        *) die "this node kit has no action $wsf_verb" ;;
    esac
    finish
}
