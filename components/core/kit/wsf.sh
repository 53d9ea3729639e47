# wasm-shim-fleet node kit: the shared logic every wasm-shim-fleet resource script on a node runs.
#
# Delivered once per node by the node's own kit resource to
#   $WSF_NODE_ROOT/var/lib/wasm-shim-fleet/kit/<sha256 of this file>/wsf.sh
# next to a file `selected` that names the kit in use. A resource script reads `selected`, checks that the
# kit's sha256 is its folder's name, sources it and calls one entry point with its own values:
#
#   wsf <call version> <flavor> install-binary <name> <url> <sha256> <archive member or ''> [version|none]
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
# Needs sh, coreutils, tar (+gzip for .tar.gz), and curl or wget; uses flock, ctr and crictl when present.
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
# wsf_flavor NAME: FLAVOR CONFIG_VERSION ACCEPTS TEMPLATE CONFIG_PATH CREATE_BASE LOADED_CONFIG SOCKET
wsf_flavor() {
    case $1 in
        containerd-legacy) FLAVOR=containerd-legacy CONFIG_VERSION=1 ACCEPTS='1' TEMPLATE=0
            CONFIG_PATH='/etc/containerd/config.toml' CREATE_BASE=''
            LOADED_CONFIG='/etc/containerd/config.toml' SOCKET='/run/containerd/containerd.sock' ;;
        containerd-1) FLAVOR=containerd-1 CONFIG_VERSION=2 ACCEPTS='2' TEMPLATE=0
            CONFIG_PATH='/etc/containerd/config.toml' CREATE_BASE=''
            LOADED_CONFIG='/etc/containerd/config.toml' SOCKET='/run/containerd/containerd.sock' ;;
        containerd-2) FLAVOR=containerd-2 CONFIG_VERSION=3 ACCEPTS='3 4' TEMPLATE=0
            CONFIG_PATH='/etc/containerd/config.toml' CREATE_BASE=''
            LOADED_CONFIG='/etc/containerd/config.toml' SOCKET='/run/containerd/containerd.sock' ;;
        k3s) FLAVOR=k3s CONFIG_VERSION=2 ACCEPTS='2' TEMPLATE=1
            CONFIG_PATH='/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl' CREATE_BASE='{{ template "base" . }}'
            LOADED_CONFIG='/var/lib/rancher/k3s/agent/etc/containerd/config.toml' SOCKET='/run/k3s/containerd/containerd.sock' ;;
        rke2) FLAVOR=rke2 CONFIG_VERSION=2 ACCEPTS='2' TEMPLATE=1
            CONFIG_PATH='/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl' CREATE_BASE='{{ template "base" . }}'
            LOADED_CONFIG='/var/lib/rancher/rke2/agent/etc/containerd/config.toml' SOCKET='/run/k3s/containerd/containerd.sock' ;;
        k3s-2) FLAVOR=k3s-2 CONFIG_VERSION=3 ACCEPTS='3' TEMPLATE=1
            CONFIG_PATH='/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl' CREATE_BASE='{{ template "base" . }}'
            LOADED_CONFIG='/var/lib/rancher/k3s/agent/etc/containerd/config.toml' SOCKET='/run/k3s/containerd/containerd.sock' ;;
        rke2-2) FLAVOR=rke2-2 CONFIG_VERSION=3 ACCEPTS='3' TEMPLATE=1
            CONFIG_PATH='/var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.tmpl' CREATE_BASE='{{ template "base" . }}'
            LOADED_CONFIG='/var/lib/rancher/rke2/agent/etc/containerd/config.toml' SOCKET='/run/k3s/containerd/containerd.sock' ;;
        microk8s) FLAVOR=microk8s CONFIG_VERSION=2 ACCEPTS='2' TEMPLATE=1
            CONFIG_PATH='/var/snap/microk8s/current/args/containerd-template.toml' CREATE_BASE=''
            LOADED_CONFIG='/var/snap/microk8s/current/args/containerd.toml' SOCKET='/var/snap/microk8s/common/run/containerd.sock' ;;
        k0s) FLAVOR=k0s CONFIG_VERSION=2 ACCEPTS='2' TEMPLATE=1
            CONFIG_PATH='/etc/k0s/containerd.d/wasm-shim-fleet.toml' CREATE_BASE='version = 2'
            LOADED_CONFIG='/run/k0s/containerd-cri.toml' SOCKET='/run/k0s/containerd.sock' ;;
        *) return 1 ;;
    esac
    case $CONFIG_VERSION in
        1) RUNTIMES_TABLE='plugins.cri.containerd.runtimes' ;;
        2) RUNTIMES_TABLE='plugins."io.containerd.grpc.v1.cri".containerd.runtimes' ;;
        3) RUNTIMES_TABLE='plugins."io.containerd.cri.v1.runtime".containerd.runtimes' ;;
    esac
}
# The flavors that fit a config version (for the version mismatch error).
fits() {
    case $1 in
        1) echo 'containerd-legacy' ;;
        2) echo 'containerd-1 or k3s or rke2 or microk8s or k0s' ;;
        3) echo 'containerd-2 or k3s-2 or rke2-2' ;;
        4) echo 'containerd-2' ;;
        *) echo 'none: config version '"$1"' is unknown' ;;
    esac
}
BEGIN_MARK='# >>> wasm-shim-fleet managed handler table >>>'
END_MARK='# <<< wasm-shim-fleet managed handler table <<<'
ORIGINAL_PREFIX='# wasm-shim-fleet original: '
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
    mv -f -- "$wsf_t" "$2" || { rm -f -- "$wsf_t"; die "cannot rename $wsf_t to $2"; }
}
strip_blanks() {  # sets wsf_s to $1 without leading and trailing blanks
    wsf_s=$1
    wsf_s=${wsf_s#"${wsf_s%%[! 	]*}"}
    wsf_s=${wsf_s%"${wsf_s##*[! 	]}"}
}

# ---------------------------------------------------------------------------------------- paths, lock
wsf_init() {
    umask 022
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
    LOCKED=
    mkdir -p -- "$STATE" || die "cannot create $STATE"
    trap wsf_exit EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
wsf_exit() {
    wsf_rc=$?
    if [ -n "$WORK" ]; then rm -rf -- "$WORK"; fi
    if [ -n "$STAGED" ]; then rm -f -- "$STAGED"; fi
    if [ "$LOCKED" = mkdir ]; then rm -rf -- "$STATE/lock.d"; fi
    exit "$wsf_rc"
}
# One command at a time per node (P4): every script on a node takes this lock before touching anything.
# flock when present (the kernel drops it when the holder dies); otherwise a mkdir lock holding the pid,
# broken when that pid is gone (a run killed with SIGKILL cannot clean up after itself).
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
            wsf_stale=0
            if [ -n "$wsf_owner" ]; then
                kill -0 "$wsf_owner" 2>/dev/null || wsf_stale=1
            else
                # Holder died between mkdir and writing its pid: stale once it is old enough.
                wsf_age=$(( $(date +%s) - $(stat -c %Y -- "$STATE/lock.d" 2>/dev/null || date +%s) ))
                [ "$wsf_age" -lt 30 ] || wsf_stale=1
            fi
            if [ "$wsf_stale" = 1 ]; then
                say "breaking the stale lock of a run that is gone (pid ${wsf_owner:-unknown})"
                mv -- "$STATE/lock.d" "$STATE/lock.stale.$$" 2>/dev/null && rm -rf -- "$STATE/lock.stale.$$"
                continue
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
fetch() {  # url dest
    case $1 in
        file://*%*) die "cannot read $1: percent-encoded file:// URLs are not supported" ;;
        file://*) cp -- "${1#file://}" "$2" 2>"$WORK/fetch.err" ;;
        *)
            if command -v curl >/dev/null 2>&1; then
                curl -fsSL --retry 3 --connect-timeout 30 -o "$2" "$1" 2>"$WORK/fetch.err"
            elif command -v wget >/dev/null 2>&1; then
                wget -q -T 30 -t 3 -O "$2" "$1" 2>"$WORK/fetch.err"
            else
                die "neither curl nor wget is installed on the node: install one of them"
            fi ;;
    esac
}
install_binary() {  # name url sha256 member ("" for a bare binary) probe (version|none)
    ib_name=$1 ib_url=$2 ib_want=$3 ib_member=$4 ib_probe=$5
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
    fetch "$ib_url" "$ib_dl" || die "download of $ib_url failed: $(tail -n 1 "$WORK/fetch.err" 2>/dev/null)"
    step binary-downloaded
    ib_got=$(sha256_of "$ib_dl") || die "cannot read the download of $ib_url (disk full?)"
    if [ "$ib_got" != "$ib_want" ]; then
        die "sha256 mismatch for $ib_url: expected $ib_want, got $ib_got; nothing was changed"
    fi
    step binary-verified
    # Stage beside the target and rename: a running shim keeps its old inode (never 'text file busy').
    mkdir -p -- "$BIN" "$STATE/binaries" || die "cannot create $BIN"
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
        case $pb_name in
            containerd-shim-*-v1) ;;
            *) die "$pb_f does not name a shim binary (containerd-shim-<name>-v1); remove it by hand" ;;
        esac
        case $pb_name in *[!a-z0-9-]*) die "$pb_f does not name a shim binary (a-z, 0-9, -); remove it by hand" ;; esac
        pb_keep=0
        for pb_k in "$@"; do
            if [ "$pb_k" = "$pb_name" ]; then pb_keep=1; break; fi
        done
        [ "$pb_keep" = 0 ] || continue
        pb_h=${pb_name#containerd-shim-}
        remove_binary "$pb_name" "io.containerd.${pb_h%-v1}.v1"
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
    # A symlinked config: edit the file it points at, keep the link.
    if [ -L "$CFG" ]; then CFG=$(readlink -f -- "$CFG") || die "cannot resolve the symlink $R$CONFIG_PATH"; fi
    LOADED=$R$LOADED_CONFIG
    # A staged config left by a run that was killed (we hold the lock: no other run is staging one).
    rm -f -- "$(dirname -- "$CFG")/.$(basename -- "$CFG").wsf-tmp"
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
#   SCAN_VERSION   the top-level `version` before the first table header (absent: 1, containerd's rule)
#   SCAN_BEGIN/END line numbers of our block's markers (0: none); SCAN_BLOCKS how many blocks
#   SCAN_BLANK     1 when the line before the block is the empty line we put there
#   SCAN_ORIGINAL  what the block's second line says about the file before it
#   SCAN_OURS      handlers our block defines (" a b ")
#   SCAN_CLASH     a table we write that the file also defines outside our block ("" if none)
# Only lines that mention one of our handlers get their keys parsed (substrings are only a pre-filter:
# the comparison is between whole canonical table names, trap 7).
scan_config() {  # file
    SCAN_VERSION=1 SCAN_BEGIN=0 SCAN_END=0 SCAN_BLOCKS=0 SCAN_BLANK=0 SCAN_ORIGINAL='' SCAN_OURS=' ' SCAN_CLASH=''
    sc_n=0 sc_in=0 sc_header=0 sc_cur='' sc_prev_empty=0
    while IFS= read -r sc_line || [ -n "$sc_line" ]; do
        sc_n=$((sc_n + 1))
        if [ "$sc_in" = 1 ]; then
            case $sc_line in
                "$END_MARK") sc_in=0; SCAN_END=$sc_n ;;
                "$ORIGINAL_PREFIX"*)
                    if [ "$sc_n" = $((SCAN_BEGIN + 1)) ]; then SCAN_ORIGINAL=${sc_line#"$ORIGINAL_PREFIX"}; fi ;;
                '['*'.runtimes.'*']')
                    sc_h=${sc_line##*.runtimes.}
                    SCAN_OURS="$SCAN_OURS${sc_h%]} " ;;
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
                sc_header=1
                sc_cur=${sc_t#[}
                sc_cur=${sc_cur#[}
                sc_cur=${sc_cur%%]*}
                sc_key=$sc_cur ;;
            *=*)
                if [ "$sc_header" = 0 ]; then
                    case $sc_t in
                        version*)
                            strip_blanks "${sc_t#version}"
                            case $wsf_s in
                                =*) strip_blanks "${wsf_s#=}"; sc_v=${wsf_s%%[!0-9]*}
                                    if [ -n "$sc_v" ]; then SCAN_VERSION=$sc_v; fi ;;
                            esac ;;
                    esac
                fi
                sc_key=${sc_cur:+$sc_cur.}${sc_t%%=*} ;;
            *) continue ;;
        esac
        for sc_h in $HANDLER_NAMES; do
            case $sc_t in
                *"$sc_h"*) ;;
                *) continue ;;
            esac
            key_norm "$sc_key"
            sc_tab=$RUNTIMES_TABLE.$sc_h
            case $wsf_key in
                "$sc_tab"|"$sc_tab".*) SCAN_CLASH="[$sc_tab] (line $sc_n)" ;;
            esac
            # `runtimes = { <handler> = {...} }`: an inline table that holds ours.
            case $sc_tab in
                "$wsf_key".*) case $sc_t in *=*"{"*) SCAN_CLASH="[$sc_tab] inside an inline table (line $sc_n)" ;; esac ;;
            esac
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
# `containerd major version` of the containerd on PATH, or "" when there is none.
containerd_major() {
    command -v containerd >/dev/null 2>&1 || { echo; return 0; }
    cm_v=$(containerd --version 2>/dev/null) || { echo; return 0; }
    # shellcheck disable=SC2086 # split "containerd <module> <version> ..." into words on purpose
    set -- $cm_v
    cm_v=${3:-}
    cm_v=${cm_v#v}
    echo "${cm_v%%.*}"
}
# Can the containerd on PATH judge a config of our version? (1.x silently accepts `version = 3`.)
can_dump() {
    [ "$TEMPLATE" = 0 ] || return 1
    cd_major=$(containerd_major)
    case $SCAN_VERSION.$cd_major in
        1.1|2.1|2.2|3.2|4.2) return 0 ;;
    esac
    return 1
}
# Every runtime table in a `config dump` as lines "name=runtime_type".
dump_runtimes() {  # dump-file out
    dr_cur=
    : > "$2"
    while IFS= read -r dr_line || [ -n "$dr_line" ]; do
        strip_blanks "$dr_line"
        case $wsf_s in
            '['*'.containerd.runtimes.'*']')
                dr_cur=${wsf_s##*.containerd.runtimes.}
                dr_cur=${dr_cur%]}
                dr_cur=${dr_cur#[\"\']}
                dr_cur=${dr_cur%[\"\']}
                case $dr_cur in *.*) dr_cur= ;; *) echo "$dr_cur=" >> "$2" ;; esac ;;
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
# Ask containerd itself how it reads a config: every handler must come out with its runtime_type, and every
# other runtime of the current config (runc!) must survive (field notes trap 6b).
validate_config() {  # candidate current("" if none) mode(install|remove)
    if ! can_dump; then
        if [ "$TEMPLATE" = 1 ]; then
            say "not validating $CFG: it is a template that the distribution renders when it restarts"
        else
            say "not validating: no containerd on PATH that reads config version $CONFIG_VERSION"
        fi
        return 0
    fi
    containerd --config "$1" config dump > "$WORK/new.dump" 2>"$WORK/dump.err" ||
        die "containerd rejects the new config: $(tail -n 1 "$WORK/dump.err"); nothing was changed"
    dump_runtimes "$WORK/new.dump" "$WORK/new.rt"
    if [ "$3" = install ]; then
        for vc_pair in $HANDLERS; do
            has_runtime "$WORK/new.rt" "${vc_pair%%=*}" "${vc_pair#*=}" ||
                die "containerd does not read handler ${vc_pair%%=*} with runtime_type ${vc_pair#*=} from the new config; nothing was changed"
        done
    else
        for vc_h in $SCAN_OURS; do
            if has_runtime "$WORK/new.rt" "$vc_h" ""; then
                die "containerd still reads handler $vc_h from the config without our block; nothing was changed"
            fi
        done
    fi
    if [ -n "$2" ]; then
        containerd --config "$2" config dump > "$WORK/old.dump" 2>/dev/null || return 0
        dump_runtimes "$WORK/old.dump" "$WORK/old.rt"
        while IFS= read -r vc_line; do
            vc_h=${vc_line%%=*}
            case $SCAN_OURS in *" $vc_h "*) continue ;; esac
            has_runtime "$WORK/new.rt" "$vc_h" "" ||
                die "the new config would lose runtime $vc_h (containerd config dump); nothing was changed"
        done < "$WORK/old.rt"
    fi
    say "containerd reads the new config (config dump)"
}

# ---------------------------------------------------------------------------------- restart and check
restart_containerd() {  # sets RESTARTED to what really happened
    if [ "$WSF_RESTART" = ":" ]; then
        RESTARTED="containerd not restarted (WSF_RESTART is ':')"
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
# After the restart: the daemon is up, the config it loads has every handler (or none of ours, after a
# removal) and every handler's shim binary is in place.
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
    if [ "$TEMPLATE" = 0 ] && can_dump; then
        containerd --config "$LOADED" config dump > "$WORK/loaded.dump" 2>"$WORK/dump.err" || {
            RESTART_ERR="containerd rejects $LOADED: $(tail -n 1 "$WORK/dump.err")"; return 1; }
    else
        cp -- "$LOADED" "$WORK/loaded.dump"
    fi
    dump_runtimes "$WORK/loaded.dump" "$WORK/loaded.rt"
    if [ "$1" = install ]; then
        for vl_pair in $HANDLERS; do
            if ! has_runtime "$WORK/loaded.rt" "${vl_pair%%=*}" "${vl_pair#*=}"; then
                RESTART_ERR="handler ${vl_pair%%=*} (runtime_type ${vl_pair#*=}) is not in $LOADED after the restart"
                return 1
            fi
        done
    else
        for vl_h in $SCAN_OURS; do
            if has_runtime "$WORK/loaded.rt" "$vl_h" ""; then
                RESTART_ERR="handler $vl_h is still in $LOADED after the restart"
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
    if [ -f "$STATE/config.prev.absent" ]; then
        rm -f -- "$CFG"
    elif [ -f "$STATE/config.prev" ]; then
        replace_file "$STATE/config.prev" "$CFG"
    fi
    if restart_containerd && daemon_up; then
        rm -f -- "$STATE/config.prev" "$STATE/config.prev.absent"
        die "$1; restored the previous config and restarted containerd on it"
    fi
    rm -f -- "$STATE/config.prev" "$STATE/config.prev.absent"
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
    mv -f -- "$2.wsf-tmp" "$2" || die "cannot rename $2.wsf-tmp"
}

# Write the new config beside the real one (same folder, so the rename is atomic), with its mode and owner.
stage_config() {  # new-content; sets STAGED
    STAGED="$(dirname -- "$CFG")/.$(basename -- "$CFG").wsf-tmp"
    mkdir -p -- "$(dirname -- "$CFG")" || die "cannot create the folder of $CFG"
    if [ -f "$CFG" ] && ! cp -p -- "$CFG" "$STAGED" 2>"$WORK/write.err"; then
        rm -f -- "$STAGED"
        die "cannot write $STAGED: $(tail -n 1 "$WORK/write.err"); nothing was changed"
    fi
    if ! cat -- "$1" > "$STAGED" 2>"$WORK/write.err"; then
        rm -f -- "$STAGED"
        die "cannot write $STAGED: $(tail -n 1 "$WORK/write.err"); nothing was changed"
    fi
}

# --------------------------------------------------------------------------------------- the table
apply_table() {
    config_paths
    render_tables > "$WORK/tables" || die "cannot write $WORK/tables (disk full?)"
    TABLE_SHA256=$(sha256_of "$WORK/tables")
    # k3s/rke2: the version that matters is the one of the file the distribution renders from the template.
    if [ "$TEMPLATE" = 1 ] && [ -f "$LOADED" ]; then
        scan_config "$LOADED"
        case " $ACCEPTS " in
            *" $SCAN_VERSION "*) ;;
            *) die "$LOADED (rendered by $FLAVOR) is config version $SCAN_VERSION, but flavor $FLAVOR writes version $CONFIG_VERSION tables into $CFG; set the pool's containerd to $(fits "$SCAN_VERSION")" ;;
        esac
    fi
    at_kind=kept
    if [ -f "$CFG" ]; then
        scan_config "$CFG"
        check_scan "$CFG" "add the handler table"
        if [ "$TEMPLATE" = 0 ]; then
            case " $ACCEPTS " in
                *" $SCAN_VERSION "*) ;;
                *) die "$CFG is containerd config version $SCAN_VERSION, but flavor $FLAVOR writes version $CONFIG_VERSION tables; set the pool's containerd to $(fits "$SCAN_VERSION")" ;;
            esac
        fi
    elif [ -n "$CREATE_BASE" ]; then
        at_kind=created
        SCAN_BEGIN=0
    else
        die "$CFG does not exist; a config holding only our tables would drop containerd's built-in runc: create it with 'containerd config default > $CFG', restart containerd, then re-run"
    fi
    for at_b in $SHIM_BINARIES; do
        [ -x "$BIN/$at_b" ] || die "shim binary $BIN/$at_b is not installed; install the binaries before the handler table"
    done
    # The candidate: everything outside our block byte for byte, our block (re)written at the end.
    at_new=$WORK/config.new
    if [ "$at_kind" = created ]; then
        { printf '%s\n' "$CREATE_BASE"; write_block created; } > "$at_new" || die "cannot write $at_new (disk full?)"
    elif [ "$SCAN_BEGIN" -gt 0 ]; then
        {
            head -n $((SCAN_BEGIN - 1 - SCAN_BLANK)) -- "$CFG"
            write_block "${SCAN_ORIGINAL:-kept}"
            tail -n +$((SCAN_END + 1)) -- "$CFG"
        } > "$at_new" || die "cannot write $at_new (disk full?)"
    else
        {
            cat -- "$CFG"
            if [ -s "$CFG" ] && [ -n "$(tail -c 1 -- "$CFG")" ]; then
                at_kind=no-final-newline
                echo
            fi
            write_block "$at_kind"
        } > "$at_new" || die "cannot write $at_new (disk full?)"
    fi
    at_cur_hash=
    if [ -f "$CFG" ]; then at_cur_hash=$(sha256_of "$CFG"); fi
    at_new_hash=$(sha256_of "$at_new")
    at_recorded=$(cat -- "$STATE/table.sha256" 2>/dev/null || true)
    if [ "$at_new_hash" = "$at_cur_hash" ]; then
        if [ "$at_recorded" = "$TABLE_SHA256" ] && [ ! -f "$STATE/config.prev" ] && [ ! -f "$STATE/config.prev.absent" ]; then
            say "the handler table in $CFG is up to date"
            return 0
        fi
        say "$CFG has the handler table, but no run verified containerd on it (an earlier run was interrupted)"
    else
        if [ -f "$CFG" ]; then
            validate_config "$at_new" "$CFG" install
        else
            validate_config "$at_new" "" install
        fi
        stage_config "$at_new"
        step config-staged
        save_prev
        step config-saved
        mv -f -- "$STAGED" "$CFG" || die "cannot rename $STAGED to $CFG"
        STAGED=
        CHANGED=1
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
    rm -f -- "$STATE/config.prev" "$STATE/config.prev.absent"
    if [ "$CHANGED" = 1 ] || [ "$at_recorded" != "$TABLE_SHA256" ]; then CHANGED=1; fi
}
remove_table() {
    config_paths
    if [ ! -f "$CFG" ]; then
        say "$CFG does not exist: no handler table to remove"
        rm -f -- "$STATE/table.sha256" "$STATE/config.orig" "$STATE/config.prev" "$STATE/config.prev.absent"
        return 0
    fi
    scan_config "$CFG"
    SCAN_CLASH=  # a table of the same name elsewhere in the file is not ours to remove, and stays
    check_scan "$CFG" "remove the handler table"
    if [ "$SCAN_BEGIN" = 0 ]; then
        if [ ! -f "$STATE/config.prev" ] && [ ! -f "$STATE/config.prev.absent" ]; then
            say "$CFG has no wasm-shim-fleet handler table"
            rm -f -- "$STATE/table.sha256" "$STATE/config.orig"
            return 0
        fi
        say "$CFG has no handler table, but no run verified containerd without it (an earlier run was interrupted)"
    else
        rt_new=$WORK/config.new
        without_block "$CFG" "$rt_new"
        rt_absent=0
        if [ "$SCAN_ORIGINAL" = created ] && [ "$(cat -- "$rt_new")" = "$CREATE_BASE" ]; then rt_absent=1; fi
        if [ "$rt_absent" = 0 ]; then validate_config "$rt_new" "$CFG" remove; fi
        if [ "$rt_absent" = 1 ]; then
            step config-staged "the template holds nothing but our block: it goes"
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
        CHANGED=1
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
    rm -f -- "$STATE/table.sha256" "$STATE/config.orig" "$STATE/config.prev" "$STATE/config.prev.absent"
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
        case $sh_pair in
            [a-z0-9]*=io.containerd.[a-z0-9]*.v[0-9]*) ;;
            *) die "'$sh_pair' is not handler=io.containerd.<name>.v<N>" ;;
        esac
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
    wsf_init
    lock_acquire
    prune_kits
    case $wsf_verb in
        install-binary)
            # the probe (5th value) came with the kit's first change of call 1; without it: no probe
            case $# in 4) install_binary "$@" none ;; 5) install_binary "$@" ;; *) die "install-binary takes 5 values, not $#" ;; esac ;;
        remove-binary) [ $# = 2 ] || die "remove-binary takes 2 values, not $#"; config_paths; remove_binary "$@" ;;
        apply-table)
            set_handlers "$@"
            if [ -n "$HANDLERS" ]; then apply_table; else remove_table; fi ;;
        remove-table) [ $# = 0 ] || die "remove-table takes no values"; remove_table ;;
        prune-binaries)
            for wsf_a in "$@"; do
                case $wsf_a in
                    containerd-shim-*-v1) case $wsf_a in *[!a-z0-9-]*) die "'$wsf_a' is not a shim binary name" ;; esac ;;
                    *) die "'$wsf_a' is not a shim binary name (containerd-shim-<name>-v1)" ;;
                esac
            done
            config_paths; prune_binaries "$@" ;;
        status) [ $# = 0 ] || die "status takes no values"; status_table ;;
        *) die "this node kit has no action $wsf_verb" ;;
    esac
    finish
}
