# tests/integration/lib.sh — helpers for vmgate's integration tests.
#
# Source it first thing:   . "$(dirname "$0")/lib.sh"
#
# Every test gets a private temp dir $T, and a cleanup trap that (even on
# failure or timeout) kills every process it started (recorded with track),
# runs the registered cleanup commands (at_cleanup), prints the logs it knows
# about (on failure) and removes $T (unless KEEP_TMP=1).
#
# Exit codes: 0 pass, 77 skip (skip prints "SKIP: reason"), anything else fail.
# shellcheck shell=bash disable=SC2034

set -eEu
set -o pipefail
# a command failing under set -e says where, instead of a silent exit
trap 'echo "FAIL: unexpected status $? at ${BASH_SOURCE[0]##*/}:$LINENO${FUNCNAME:+ in ${FUNCNAME[0]}}: $BASH_COMMAND"' ERR

ROOT=${VMGATE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in
/*) VMGATE=${VMGATE:-$BUILD/vmgate} ;;
*) VMGATE=${VMGATE:-$ROOT/$BUILD/vmgate} ;;
esac
TOOLS=$ROOT/tests/tools
# Debian's python3 has PIL; a python3 earlier in PATH (pyenv, venv) may not.
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
TEST_NAME=$(basename "$0" .sh)

T=$(mktemp -d "${TMPDIR:-/tmp}/vmg-$TEST_NAME.XXXXXX")
chmod 755 "$T"      # throwaway users (gvnccapture) must reach files under it

PIDS=()             # every background process we started
CLEANUPS=()         # shell commands to run at exit, in reverse order
LOGS=()             # log files to show when the test fails
declare -A QEMU_PID=() QEMU_BACKEND=() QEMU_CTL=() VV_PID=() VV_LOG=() VV_FB=() XV_PID=()
PORTS_GIVEN=" "
VMGATE_PID=
VMGATE_LOG=
VMGATE_CFG=
CA=

say() { echo "[$(date +%T.%3N)] $*"; }

track() { PIDS+=("$1"); }
at_cleanup() { CLEANUPS+=("$1"); }
add_log() {
    case " ${LOGS[*]} " in *" $1 "*) ;; *) LOGS+=("$1") ;; esac
}

fail() {
    echo "FAIL: $*"
    exit 1
}

skip() {
    echo "SKIP: $*"
    exit 77
}

need_root() { [ "$(id -u)" -eq 0 ] || skip "$1 (needs root)"; }

_dump_logs() {
    local f
    for f in "${LOGS[@]}"; do
        [ -s "$f" ] || continue
        echo "----- ${f#"$T"/} (last 40 lines) -----"
        tail -n 40 "$f"
    done
    echo "----- end of logs (temp dir $T$([ "${KEEP_TMP:-0}" = 1 ] && echo " kept" || echo " removed")) -----"
}

_kill_pid() {   # PID: TERM, wait up to 3 s, KILL
    local p=$1 i
    kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
    kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 30); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    return 0
}

_cleanup() {
    local rc=$? i
    set +eEu
    trap - EXIT INT TERM ERR
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        _dump_logs
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        _kill_pid "${PIDS[i]}"
    done
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUPS[i]}" >/dev/null 2>&1
    done
    if [ "${KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$T"
    fi
    exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for SECONDS CMD... : poll CMD every 0.1 s until it succeeds; 1 on timeout
wait_for() {
    local secs=$1 end
    shift
    end=$(($(date +%s%N) + secs * 1000000000))
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.1
    done
    return 0
}

# first_file PATH...: print the first PATH that exists (for globs that may not match)
first_file() {
    local f
    for f in "$@"; do
        [ -e "$f" ] && { echo "$f"; return 0; }
    done
    return 0
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# free_port [LO HI]: a TCP port free on 127.0.0.1 and ::1, not handed out before
free_port() {
    local lo=${1:-20000} hi=${2:-40000} p
    for _ in $(seq 200); do
        p=$((lo + RANDOM % (hi - lo + 1)))
        case $PORTS_GIVEN in *" $p "*) continue ;; esac
        if "$PY" - "$p" <<'EOF' 2>/dev/null; then
import socket, sys
p = int(sys.argv[1])
for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"), (socket.AF_INET, "0.0.0.0")):
    s = socket.socket(fam)
    s.bind((addr, p))
    s.close()
EOF
            PORTS_GIVEN="$PORTS_GIVEN$p "
            echo "$p"
            return 0
        fi
    done
    fail "no free port in $lo-$hi"
}

# A port in the console range, for viewers that insist on 5900+N (gvnccapture) and
# for QEMU's -vnc HOST:DISPLAY.
free_vnc_port() { free_port 5910 6099; }

port_listening() {   # HOST PORT
    "$PY" -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()' "$1" "$2"
}

# ------------------------------------------------------------ vmgate set-up

need_vmgate() {
    [ -x "$VMGATE" ] || fail "$VMGATE not built (run make, or make check)"
}

# make_certs: CA + server cert for localhost,127.0.0.1,::1 in $T/tls; sets CA
make_certs() {
    need_vmgate
    "$VMGATE" certs init --dir "$T/tls" --name localhost,127.0.0.1,::1 >"$T/certs.log" 2>&1 ||
        { cat "$T/certs.log"; fail "vmgate certs init failed"; }
    CA=$T/tls/ca.crt
    [ -s "$CA" ] && [ -s "$T/tls/server.crt" ] && [ -s "$T/tls/server.key" ] ||
        fail "vmgate certs init did not write ca.crt/server.crt/server.key"
}

# make_passwd USER PASS [FILE]: add USER to the password file (default $T/passwd)
make_passwd() {
    local f=${3:-$T/passwd}
    printf '%s\n' "$2" | "$VMGATE" passwd "$f" "$1" >"$T/passwd.log" 2>&1 ||
        { cat "$T/passwd.log"; fail "vmgate passwd $f $1 failed"; }
}

# write_config FILE [key=value ...] -- [vm NAME key=value ...] ...
# Writes a [gateway] section with test defaults (overridden by key=value,
# "key=" for empty, "-key" to leave it out) and one [vm NAME] section per
# "vm NAME" group.
write_config() {
    local f=$1 kv k
    shift
    local -A gw=(
        [address]=127.0.0.1 [cert]=$T/tls/server.crt [key]=$T/tls/server.key
        [auth]=file [passwd_file]=$T/passwd [user]= [login_timeout]=10s
        [fail_delay]=0 [socket_dir]=$T/run [control]=$T/control
    )
    local order=(address cert key auth pam_service passwd_file user login_timeout
        fail_delay control max_unauth max_unauth_per_source auth_workers clipboard clipboard_max
        socket_dir)
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        kv=$1; shift
        if [ "${kv#-}" != "$kv" ]; then   # -key: leave the key out
            unset "gw[${kv#-}]"
            continue
        fi
        k=${kv%%=*}
        gw[$k]=${kv#*=}
        case " ${order[*]} " in *" $k "*) ;; *) order+=("$k") ;; esac
    done
    [ "${1:-}" = "--" ] && shift
    {
        echo "; written by $TEST_NAME"
        echo "[gateway]"
        for k in "${order[@]}"; do
            [ -n "${gw[$k]+x}" ] && echo "$k = ${gw[$k]}"
        done
        while [ $# -gt 0 ]; do
            if [ "$1" = vm ]; then
                echo
                echo "[vm $2]"
                shift 2
            else
                echo "${1%%=*} = ${1#*=}"
                shift
            fi
        done
    } >"$f"
}

# start_vmgate CONFIG [NLISTEN]: run vmgate in the background (log $T/vmgate.N.log),
# wait for NLISTEN (default: number of vnc_port lines) "listening for vm" lines.
# Extra environment for vmgate: set VMGATE_ENV=(VAR=value ...) before calling.
start_vmgate() {
    local cfg=$1 n=${2:-} i
    need_vmgate
    [ -n "$n" ] || n=$(grep -cE '^(vnc|spice)_port *=' "$cfg" || true)
    i=$(( ${#LOGS[@]} ))
    VMGATE_LOG=$T/vmgate.$i.log
    VMGATE_CFG=$cfg
    add_log "$VMGATE_LOG"
    env ${VMGATE_ENV[@]+"${VMGATE_ENV[@]}"} "$VMGATE" run ${VMGATE_RUN_ARGS[@]+"${VMGATE_RUN_ARGS[@]}"} \
        -c "$cfg" >"$VMGATE_LOG" 2>&1 </dev/null &
    VMGATE_PID=$!
    track "$VMGATE_PID"
    for _ in $(seq 150); do
        if ! kill -0 "$VMGATE_PID" 2>/dev/null; then
            wait "$VMGATE_PID" && i=0 || i=$?
            echo "--- config $cfg ---"; cat "$cfg"
            fail "vmgate exited (status $i) during start-up"
        fi
        [ "$(grep -cE 'listening for vm .* \((vnc|spice)\) on ' "$VMGATE_LOG")" -ge "$n" ] && return 0
        sleep 0.1
    done
    echo "--- config $cfg ---"; cat "$cfg"
    fail "vmgate did not print $n 'listening for vm' lines within 15 s"
}

# stop_vmgate: SIGTERM, expect a clean exit (status 0) within 5 s
stop_vmgate() {
    local rc
    kill -TERM "$VMGATE_PID"
    wait_for 5 _not_alive "$VMGATE_PID" || fail "vmgate still running 5 s after SIGTERM"
    wait "$VMGATE_PID" && rc=0 || rc=$?
    [ "$rc" -eq 0 ] || fail "vmgate exited with status $rc after SIGTERM (expected 0)"
}

_not_alive() { ! kill -0 "$1" 2>/dev/null; }

vmgate_alive() { kill -0 "$VMGATE_PID" 2>/dev/null; }

# log_has ERE [FILE]: grep -E in vmgate's log
log_has() { grep -Eq -- "$1" "${2:-$VMGATE_LOG}"; }

# expect_log ERE [SECONDS]: wait for a line in vmgate's log
expect_log() {
    wait_for "${2:-10}" log_has "$1" || fail "vmgate log has no line matching: $1"
    say "vmgate log: $(grep -E -- "$1" "$VMGATE_LOG" | tail -n 1)"
}

# ------------------------------------------------------------------ QEMU

# start_qemu NAME MODE [QEMU ARGS...]
#   MODE unix: -vnc unix:$T/NAME.vnc        backend unix:$T/NAME.vnc
#        tcp:  -vnc 127.0.0.1:N             backend 127.0.0.1:PORT
#        qmp:  -vnc none + QMP $T/NAME.qmp  backend qmp:$T/NAME.qmp
# Always also a QMP socket $T/NAME.ctl for the test itself (screendump, quit),
# unless QEMU_NO_MONITOR=1 (then QEMU keeps its HMP monitor on a virtual console).
# Sets QEMU_PID[NAME], QEMU_BACKEND[NAME].
start_qemu() {
    local name=$1 mode=$2 vnc port
    shift 2
    local args=(-display none -nic none -m 64 -machine accel=tcg -name "$name")
    [ -n "${QEMU_NO_MONITOR:-}" ] || args+=(-qmp "unix:$T/$name.ctl,server=on,wait=off")
    case $mode in
    unix)
        vnc="unix:$T/$name.vnc"; QEMU_BACKEND[$name]=$vnc ;;
    tcp)
        port=$(free_vnc_port)
        vnc="127.0.0.1:$((port - 5900))"; QEMU_BACKEND[$name]="127.0.0.1:$port" ;;
    qmp)
        vnc=none; QEMU_BACKEND[$name]="qmp:$T/$name.qmp"
        args+=(-qmp "unix:$T/$name.qmp,server=on,wait=off") ;;
    *) fail "start_qemu: unknown mode $mode" ;;
    esac
    add_log "$T/qemu.$name.log"
    qemu-system-x86_64 "${args[@]}" -vnc "$vnc" "$@" >"$T/qemu.$name.log" 2>&1 </dev/null &
    QEMU_PID[$name]=$!
    QEMU_CTL[$name]=$T/$name.ctl
    track "${QEMU_PID[$name]}"
    local ready
    case $mode in
    unix) ready=(test -S "$T/$name.vnc") ;;
    tcp)  ready=(port_listening 127.0.0.1 "$port") ;;
    qmp)  ready=(test -S "$T/$name.qmp") ;;
    esac
    wait_for 20 "${ready[@]}" || fail "QEMU $name did not come up"
    [ -n "${QEMU_NO_MONITOR:-}" ] || wait_for 10 test -S "$T/$name.ctl" || fail "QEMU $name: no QMP socket"
    kill -0 "${QEMU_PID[$name]}" 2>/dev/null || fail "QEMU $name exited"
    say "QEMU $name up (pid ${QEMU_PID[$name]}, backend ${QEMU_BACKEND[$name]})"
}

# qmp_cmd NAME COMMAND [JSON]   (see tests/tools/qmp.py)
qmp_cmd() {
    local name=$1
    shift
    "$PY" "$TOOLS/qmp.py" "${QEMU_CTL[$name]}" "$@"
}

screendump() {   # NAME FILE.png
    qmp_cmd "$1" screendump "$2" >/dev/null || fail "screendump of $1 failed"
}

# wait_guest_stable NAME: wait until two screendumps 1 s apart match (up to the
# blinking cursor) and are not blank
wait_guest_stable() {
    local name=$1 a=$T/stable.a.png b=$T/stable.b.png i
    screendump "$name" "$a"
    for i in $(seq 30); do
        sleep 1
        screendump "$name" "$b"
        if "$PY" "$TOOLS/imgcmp.py" compare "$a" "$b" >/dev/null &&
            "$PY" "$TOOLS/imgcmp.py" notblank "$b" >/dev/null; then
            return 0
        fi
        mv "$b" "$a"
    done
    fail "screen of QEMU $name never settled"
}

qemu_vnc_clients() {   # NAME: number of VNC clients QEMU has now (query-vnc-servers
    # also counts clients handed over with add_client while QEMU runs -vnc none)
    qmp_cmd "$1" query-vnc-servers |
        "$PY" -c 'import json,sys; print(sum(len(s.get("clients", [])) for s in json.load(sys.stdin)["return"]))'
}

# ------------------------------------------------------------ X + viewers

# start_xvfb ID: an Xvfb of its own for one viewer; sets XV_DISPLAY[ID], VV_FB[ID]
declare -A XV_DISPLAY=()
start_xvfb() {
    local id=$1 fb=$T/fb.$1
    mkdir -p "$fb"
    add_log "$T/xvfb.$id.log"
    Xvfb -displayfd 3 -screen 0 1024x768x24 -fbdir "$fb" -nolisten tcp -br -noreset \
        3>"$T/xvfb.$id.display" >"$T/xvfb.$id.log" 2>&1 </dev/null &
    XV_PID[$id]=$!
    track "${XV_PID[$id]}"
    wait_for 15 test -s "$T/xvfb.$id.display" || fail "Xvfb for $id did not start"
    XV_DISPLAY[$id]=:$(head -n 1 "$T/xvfb.$id.display")
    VV_FB[$id]=$fb/Xvfb_screen0
}

# vncviewer_start ID USER PASS PORT [EXTRA VIEWER ARGS...]
# TigerVNC vncviewer under its own Xvfb, logging to $T/vv.ID.log.  The viewer
# trusts only $CA.  Default -Shared; pass -Shared=0 to test the forced shared flag.
vncviewer_start() {
    local id=$1 user=$2 pass=$3 port=$4 home=$T/home.$1
    shift 4
    [ -n "${XV_DISPLAY[$id]:-}" ] || start_xvfb "$id"
    mkdir -p "$home"
    VV_LOG[$id]=$T/vv.$id.log
    add_log "${VV_LOG[$id]}"
    HOME=$home DISPLAY=${XV_DISPLAY[$id]} VNC_USERNAME=$user VNC_PASSWORD=$pass \
        vncviewer -SecurityTypes X509Plain -X509CA "$CA" -ReconnectOnError=0 \
        -AlertOnFatalError=0 -Shared -Log '*:stderr:30' "$@" "${VV_HOST:-localhost}::$port" \
        >"${VV_LOG[$id]}" 2>&1 </dev/null &
    VV_PID[$id]=$!
    track "${VV_PID[$id]}"
    say "viewer $id: $user@${VV_HOST:-localhost}::$port (pid ${VV_PID[$id]})"
}

VV_OK='CConn: +Using pixel format'
VV_FAIL='Authentication failure|End of stream|unable to connect|Connection reset|[Hh]andshake failed|closed|rfb::|[Ee]xception'

viewer_alive() { kill -0 "${VV_PID[$1]}" 2>/dev/null; }
viewer_log_has() { grep -Eq -- "$2" "${VV_LOG[$1]}"; }

# vncviewer_result ID [SECONDS]: wait until the viewer is in a session or has
# failed; prints "connected", or "failed: <last relevant log line>"
vncviewer_result() {
    local id=$1 secs=${2:-20} end
    end=$(($(date +%s) + secs))
    while [ "$(date +%s)" -le "$end" ]; do
        if viewer_log_has "$id" "$VV_OK"; then echo connected; return 0; fi
        if viewer_log_has "$id" "$VV_FAIL" || ! viewer_alive "$id"; then
            sleep 0.3
            echo "failed: $(grep -E -- "$VV_FAIL" "${VV_LOG[$id]}" | tail -n 1)"
            return 0
        fi
        sleep 0.1
    done
    echo "failed: no result within ${secs}s"
}

# expect_viewer_connected ID: fail unless the viewer reaches a session
expect_viewer_connected() {
    local r
    r=$(vncviewer_result "$1")
    [ "$r" = connected ] || fail "viewer $1 did not connect: $r"
    say "viewer $1 connected"
}

# expect_viewer_refused ID REASON: the viewer must fail with "Authentication failure: REASON"
expect_viewer_refused() {
    local r
    r=$(vncviewer_result "$1")
    case $r in
    connected) fail "viewer $1 got in, expected a refusal ($2)" ;;
    esac
    viewer_log_has "$1" "Authentication failure: $2" ||
        fail "viewer $1: expected 'Authentication failure: $2', got: $r"
    wait_for 10 _not_alive "${VV_PID[$1]}" || fail "viewer $1 still running after its refusal"
    say "viewer $1 refused: $(grep -E 'Authentication failure' "${VV_LOG[$1]}" | tail -n 1)"
}

stop_viewer() {   # ID
    _kill_pid "${VV_PID[$1]}"
}

# run_vncviewer USER PASS PORT [ID]: start a viewer and print its result
run_vncviewer() {
    local id=${4:-v$RANDOM}
    vncviewer_start "$id" "$1" "$2" "$3" >/dev/null
    vncviewer_result "$id"
}

# viewer_screenshot ID OUT.png
viewer_screenshot() {
    "$PY" "$TOOLS/imgcmp.py" xwd2png "${VV_FB[$1]}" "$2"
}

# expect_viewer_shows ID QEMU_NAME [SECONDS]: the viewer's screen must come to
# match QEMU's own screendump (the 720x400 text screen, located inside the
# 1024x768 Xvfb screen).  Retries: the viewer's F8 toast hides part of the
# screen for a few seconds after connecting.
expect_viewer_shows() {
    local id=$1 name=$2 secs=${3:-20} end res ref=$T/ref.$2.png shot=$T/shot.$1.png
    end=$(($(date +%s) + secs))
    while :; do
        screendump "$name" "$ref"
        if res=$("$PY" "$TOOLS/imgcmp.py" compare "${VV_FB[$id]}" "$ref"); then
            "$PY" "$TOOLS/imgcmp.py" notblank "$ref" >/dev/null ||
                fail "QEMU $name's screen is blank; nothing to compare"
            say "viewer $id shows QEMU $name's screen: $res"
            return 0
        fi
        [ "$(date +%s)" -lt "$end" ] || break
        sleep 1
    done
    viewer_screenshot "$id" "$shot" || true
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "images kept: $shot $ref"; fi
    fail "viewer $id's screen does not match QEMU $name's screendump: $res"
}

# --------------------------------------------------------------- gvnccapture

# run_gvnccapture USER PASS PORT OUT.png: gvnccapture through a pty, as a
# throwaway system user whose passwd home holds .pki/CA/cacert.pem (gtk-vnc
# takes ~ from getpwuid, not $HOME).  Needs root; PORT must be >= 5900
# (gvnccapture's HOST:N means port 5900+N).  Prints gvnccapture's output;
# returns its exit status.
GV_USER=
run_gvnccapture() {
    local user=$1 pass=$2 port=$3 outpng=$4 home=$T/gvhome
    [ "$port" -ge 5900 ] || fail "run_gvnccapture: port $port < 5900"
    if [ -z "$GV_USER" ]; then
        need_root "gvnccapture reads its CA from the passwd home of the user it runs as; creating a throwaway user"
        GV_USER=vmgt$$
        GV_USER=${GV_USER:0:30}
        useradd -M -d "$home" -s /usr/sbin/nologin -c "vmgate test $TEST_NAME" "$GV_USER" ||
            fail "useradd $GV_USER failed"
        at_cleanup "userdel -f '$GV_USER'"
        mkdir -p "$home/.pki/CA" "$home/out"
        cp "$CA" "$home/.pki/CA/cacert.pem"
        chown -R "$GV_USER" "$home"
    fi
    local rc=0
    "$PY" "$TOOLS/ptyrun.py" -t 60 "Username:=$user" "Password:=$pass" -- \
        runuser -u "$GV_USER" -- env HOME="$home" gvnccapture localhost:$((port - 5900)) "$home/out/cap.png" ||
        rc=$?
    if [ -f "$home/out/cap.png" ]; then
        mv "$home/out/cap.png" "$outpng"
    fi
    return "$rc"
}

# ------------------------------------------------- Xvnc backend + X clipboards
# (for the clipboard tests t5*-clip*)

# vncviewer -Log for the clipboard tests: the viewer's clipboard events
# ("Got clipboard data", "Sending clipboard data") at debug level, the rest as
# usual (DesktopWindow at debug level would draw a statistics graph over the
# remote screen)
VV_CLIP_LOG='*:stderr:30,Viewport:stderr:100,CMsgHandler:stderr:100'

# need_clip_tools: skip unless Xvnc, xclip, Xvfb and vncviewer are installed
need_clip_tools() {
    local c
    for c in Xvnc:tigervnc-standalone-server xclip:xclip Xvfb:xvfb vncviewer:tigervnc-viewer; do
        command -v "${c%%:*}" >/dev/null 2>&1 || skip "${c%%:*} not installed (package ${c#*:})"
    done
}

# start_xvnc NAME MODE [XVNC ARGS...]: TigerVNC's Xvnc as a VNC backend with a
# real X clipboard, no authentication (vmgate is the only way in).
#   MODE unix: -rfbunixpath $T/NAME.xvnc   backend unix:$T/NAME.xvnc
#        tcp:  -localhost -rfbport PORT    backend 127.0.0.1:PORT
# Sets XVNC_DISPLAY[NAME] (":N", for xclip), XVNC_BACKEND[NAME], XVNC_PID[NAME].
declare -A XVNC_DISPLAY=() XVNC_BACKEND=() XVNC_PID=()
start_xvnc() {
    local name=$1 mode=$2 port ready
    shift 2
    local args=(-displayfd 3 -geometry 320x240 -depth 24 -SecurityTypes None -nolisten tcp
        -desktop "xvnc-$name" -AlwaysShared -AcceptSetDesktopSize=0)
    case $mode in
    unix)
        args+=(-rfbport -1 -rfbunixpath "$T/$name.xvnc")
        XVNC_BACKEND[$name]=unix:$T/$name.xvnc
        ready=(test -S "$T/$name.xvnc") ;;
    tcp)
        port=$(free_port)
        args+=(-localhost -rfbport "$port")
        XVNC_BACKEND[$name]=127.0.0.1:$port
        ready=(port_listening 127.0.0.1 "$port") ;;
    *) fail "start_xvnc: unknown mode $mode" ;;
    esac
    add_log "$T/xvnc.$name.log"
    Xvnc "${args[@]}" "$@" 3>"$T/xvnc.$name.display" >"$T/xvnc.$name.log" 2>&1 </dev/null &
    XVNC_PID[$name]=$!
    track "${XVNC_PID[$name]}"
    wait_for 15 test -s "$T/xvnc.$name.display" || fail "Xvnc $name did not start"
    XVNC_DISPLAY[$name]=:$(head -n 1 "$T/xvnc.$name.display")
    wait_for 10 "${ready[@]}" || fail "Xvnc $name does not listen (${XVNC_BACKEND[$name]})"
    say "Xvnc $name up (pid ${XVNC_PID[$name]}, display ${XVNC_DISPLAY[$name]}, backend ${XVNC_BACKEND[$name]})"
}

# xclip_set DISPLAY FILE: own DISPLAY's CLIPBOARD selection with FILE's bytes
# (an xclip in the background that exits when another client takes the
# selection over)
xclip_set() {
    xclip -quiet -display "$1" -selection clipboard -i <"$2" >/dev/null 2>&1 &
    track $!
}

# xclip_get DISPLAY: print DISPLAY's CLIPBOARD text (empty + status 1 if none
# or no answer within XCLIP_TIMEOUT seconds, default 5)
xclip_get() {
    timeout -k 1 "${XCLIP_TIMEOUT:-5}" xclip -o -display "$1" -selection clipboard 2>/dev/null
}

# xclip_is DISPLAY FILE: DISPLAY's CLIPBOARD holds exactly FILE's bytes
xclip_is() {
    local got
    got=$(xclip_get "$1" | hexof) || return 1
    [ "$got" = "$(hexof <"$2")" ]
}

# expect_clip DISPLAY FILE [SECONDS] [WHAT]: wait until DISPLAY's CLIPBOARD holds FILE's bytes
expect_clip() {
    local secs=${3:-10} what=${4:-clipboard of $1}
    if ! wait_for "$secs" xclip_is "$1" "$2"; then
        echo "expected: $(head -c 200 "$2" | od -An -c)"
        echo "got:      $(xclip_get "$1" | head -c 200 | od -An -c || true)"
        fail "$what: text did not arrive within ${secs}s"
    fi
    say "$what: $(wc -c <"$2") bytes arrived intact"
}

hexof() { od -An -tx1 -v | tr -d ' \n'; }   # stdin -> lowercase hex

# count_clip_audit ERE: number of vmgate log lines "...: clipboard ERE"
count_clip_audit() {
    grep -Ec -- ": clipboard $1" "$VMGATE_LOG" || true
}

# ------------------------------------ legacy-cut-text viewer (libvncclient)
# tests/tools/clip_lvc/clip_lvc.c: see its header for commands and output.

# build_clip_lvc: compile clip_lvc into $T (skip without libvncserver-dev); sets LVC
LVC=
build_clip_lvc() {
    pkg-config --exists libvncclient 2>/dev/null ||
        skip "libvncclient not installed (package libvncserver-dev)"
    LVC=$T/clip_lvc
    # shellcheck disable=SC2046
    gcc -O1 -Wall -o "$LVC" "$TOOLS/clip_lvc/clip_lvc.c" $(pkg-config --cflags --libs libvncclient) \
        >"$T/clip_lvc.build" 2>&1 || { cat "$T/clip_lvc.build"; fail "building clip_lvc failed"; }
}

# lvc_start ID USER PASS PORT: run clip_lvc against localhost:PORT with $CA;
# commands go in through a FIFO (lvc_cmd), events to $T/lvc.ID.out
declare -A LVC_PID=() LVC_OUT=() LVC_FD=()
lvc_start() {
    local id=$1 fd
    [ -n "$LVC" ] || build_clip_lvc
    rm -f "$T/lvc.$id.in"
    mkfifo "$T/lvc.$id.in"
    LVC_OUT[$id]=$T/lvc.$id.out
    add_log "$T/lvc.$id.err"
    VNC_USERNAME=$2 VNC_PASSWORD=$3 "$LVC" localhost "$4" "$CA" <"$T/lvc.$id.in" \
        >"${LVC_OUT[$id]}" 2>"$T/lvc.$id.err" &
    LVC_PID[$id]=$!
    track "${LVC_PID[$id]}"
    exec {fd}>"$T/lvc.$id.in"
    LVC_FD[$id]=$fd
    say "legacy viewer $id: $2@localhost::$4 (pid ${LVC_PID[$id]})"
}

# lvc_cmd ID COMMAND...: (in a subshell: if clip_lvc is gone, SIGPIPE ends
# only that, and the test fails with a message instead of dying silently)
lvc_cmd() {
    kill -0 "${LVC_PID[$1]}" 2>/dev/null || fail "legacy viewer $1 is gone (command: ${*:2})"
    ( echo "${*:2}" >&"${LVC_FD[$1]}" )
}

lvc_has() { grep -Eq -- "$2" "${LVC_OUT[$1]}"; }   # ID ERE

# lvc_expect ID ERE [SECONDS]: wait for an output line of the legacy viewer
lvc_expect() {
    wait_for "${3:-10}" lvc_has "$1" "$2" || {
        echo "--- legacy viewer $1 output ---"; cat "${LVC_OUT[$1]}"
        fail "legacy viewer $1: no line matching: $2"
    }
}

# lvc_alive ID: still connected and answers a full refresh
lvc_alive() {
    local id=$1 n
    kill -0 "${LVC_PID[$id]}" 2>/dev/null || fail "legacy viewer $id exited"
    n=$(grep -c '^refreshed ' "${LVC_OUT[$id]}" || true)
    lvc_cmd "$id" refresh
    wait_for 10 eval "[ \$(grep -c '^refreshed ' '${LVC_OUT[$id]}') -gt $n ]" ||
        fail "legacy viewer $id: no framebuffer update after a refresh request"
    lvc_has "$id" '^closed' && fail "legacy viewer $id: the server closed the session"
    return 0
}

# lvc_stop ID: quit (closing the FIFO) and wait for it to exit
lvc_stop() {
    local id=$1 fd=${LVC_FD[$1]}
    ( echo quit >&"$fd" ) 2>/dev/null || true
    exec {fd}>&-
    wait_for 5 _not_alive "${LVC_PID[$id]}" || _kill_pid "${LVC_PID[$id]}"
}


# ---------------------------------------- checklist tests (t30, t31)
# Instead of stopping at the first failure, every check prints "ok   - ..."
# or "FAIL - ..." and checks_done ends the test with the tally.  checklist
# turns errexit, pipefail and the ERR trap off for the rest of the test: a
# command that fails is a result to look at, not the end.
checklist() {
    set +eE +o pipefail
    trap - ERR
    PASS=0
    FAIL=0
}
ok()  { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
# check DESCRIPTION EXPECTED ACTUAL
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected '$2', got '$3'"; fi; }
# checks_done: "NAME: N passed, N failed"; exit 1 if any check failed
checks_done() {
    echo "$TEST_NAME: $PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ] || exit 1
    exit 0
}

# ------------------------------------ network namespaces (firewall tests)

# need_tools WHO TOOL...: skip unless every TOOL is installed
need_tools() {
    local who=$1 t
    shift
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip "$who needs $t"
    done
}

# netns_add NAME: a new network namespace with lo up, deleted at exit; skip
# when namespaces cannot be created here
netns_add() {
    ip netns add "$1" 2>"$T/netns.err" ||
        skip "cannot create network namespaces here: $(cat "$T/netns.err")"
    at_cleanup "ip netns del $1"
    ip -n "$1" link set lo up
}

# netns_pair IN OUT: two namespaces joined by a veth pair, with 10.99.0.1/24
# and fd00:99::1/64 inside, 10.99.0.2/24 and fd00:99::2/64 outside.  The
# ends are $NETNS_VETH_IN and $NETNS_VETH_OUT (to add more addresses).
NETNS_VETH_IN=vgi$$
NETNS_VETH_OUT=vgo$$
netns_pair() {
    local in=$1 out=$2
    netns_add "$in"
    netns_add "$out"
    ip -n "$in" link add "$NETNS_VETH_IN" type veth peer name "$NETNS_VETH_OUT" netns "$out"
    ip -n "$in" addr add 10.99.0.1/24 dev "$NETNS_VETH_IN"
    ip -n "$in" addr add fd00:99::1/64 dev "$NETNS_VETH_IN" nodad
    ip -n "$out" addr add 10.99.0.2/24 dev "$NETNS_VETH_OUT"
    ip -n "$out" addr add fd00:99::2/64 dev "$NETNS_VETH_OUT" nodad
    ip -n "$in" link set "$NETNS_VETH_IN" up
    ip -n "$out" link set "$NETNS_VETH_OUT" up
}

# netns_ruleset NS: `nft -s list ruleset` in NS (no counter values); a
# failure prints a line saying so, never the empty ruleset
netns_ruleset() {
    timeout 60 ip netns exec "$1" nft -s list ruleset || echo "(nft list ruleset failed: status $?)"
}

# netns_probe NS HOST PORT [SOURCE]: connect from namespace NS (from address
# SOURCE) and print OPEN (the server greeted with $PROBE_GREETING, default
# "hello"), OPEN-BUT-NO-GREETING, REFUSED (a reset), TIMEOUT (dropped;
# after $PROBE_TIMEOUT seconds, default 1.5) or ERROR-errno
netns_probe() {
    local ns=$1
    shift
    timeout 20 ip netns exec "$ns" "$PY" - "$@" <<'EOF'
import os, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
src = sys.argv[3] if len(sys.argv) > 3 else None
greeting = os.environ.get("PROBE_GREETING", "hello").encode()
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(float(os.environ.get("PROBE_TIMEOUT", "1.5")))
try:
    if src:
        s.bind((src, 0))
    s.connect((host, port))
    print("OPEN" if s.recv(64).startswith(greeting) else "OPEN-BUT-NO-GREETING")
except ConnectionRefusedError:
    print("REFUSED")
except socket.timeout:
    print("TIMEOUT")
except OSError as e:
    print("ERROR-%d" % e.errno)
EOF
}

# ------------------------------------------------ local users, sshd (t8x)

# make_user VAR: create a throwaway user (no password, "*" so sshd does not
# take it for locked; home $T/home.NAME) removed at exit; its name goes to VAR
make_user() {
    local name home
    need_root "creating throwaway users"
    name=vmg$1$$
    name=${name:0:30}
    home=$T/home.$name
    useradd -M -d "$home" -p '*' -s /bin/sh -c "vmgate test $TEST_NAME" "$name" ||
        fail "useradd $name failed"
    at_cleanup "userdel -f '$name'"
    mkdir -p "$home"
    chown "$name" "$home"
    printf -v "$1" '%s' "$name"
}

# start_sshd USER...: a private sshd on a loopback port ($SSHD_PORT), its own
# host key, keys in $T/ssh (USER's private key: $T/ssh/id.USER); local
# stream forwarding allowed, nothing else.  Killed at exit.
SSHD_PORT=
start_sshd() {
    local u
    [ -x /usr/sbin/sshd ] || skip "no /usr/sbin/sshd (openssh-server, scripts/deps.sh)"
    need_root "sshd"
    mkdir -p "$T/ssh/keys" /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/host_key" || fail "ssh-keygen failed"
    for u in "$@"; do
        ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/id.$u" || fail "ssh-keygen failed"
        cp "$T/ssh/id.$u.pub" "$T/ssh/keys/$u"
        chmod 644 "$T/ssh/keys/$u"
    done
    SSHD_PORT=$(free_port)
    cat >"$T/ssh/sshd_config" <<CFG
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $T/ssh/host_key
PidFile $T/ssh/sshd.pid
AuthorizedKeysFile $T/ssh/keys/%u
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers $*
AllowStreamLocalForwarding yes
AllowTcpForwarding local
X11Forwarding no
PermitTTY yes
LogLevel VERBOSE
CFG
    add_log "$T/sshd.log"
    /usr/sbin/sshd -D -e -f "$T/ssh/sshd_config" >"$T/sshd.log" 2>&1 </dev/null &
    track $!
    wait_for 10 port_listening 127.0.0.1 "$SSHD_PORT" || fail "sshd did not start"
    say "sshd on 127.0.0.1:$SSHD_PORT for $*"
}

# ssh_as USER ARGS...: ssh to the private sshd as USER (no known_hosts, batch)
ssh_as() {
    local u=$1
    shift
    ssh -F /dev/null -i "$T/ssh/id.$u" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ExitOnForwardFailure=yes \
        -p "$SSHD_PORT" "$u@127.0.0.1" "$@"
}

# vncviewer_none ID TARGET [USER]: TigerVNC with security None (socket_dir,
# ssh -L) under its own Xvfb; TARGET is a unix socket path or HOST::PORT;
# run as USER when given (runuser)
vncviewer_none() {
    local id=$1 target=$2 user=${3:-} home=$T/home.vv.$1
    [ -n "${XV_DISPLAY[$id]:-}" ] || start_xvfb "$id"
    mkdir -p "$home"
    local pre=()
    if [ -n "$user" ]; then
        chown "$user" "$home"
        pre=(runuser -u "$user" --)
    fi
    VV_LOG[$id]=$T/vv.$id.log
    add_log "${VV_LOG[$id]}"
    "${pre[@]}" env HOME="$home" DISPLAY="${XV_DISPLAY[$id]}" \
        vncviewer -SecurityTypes None -ReconnectOnError=0 -AlertOnFatalError=0 -Shared \
        -Log '*:stderr:30' "$target" >"${VV_LOG[$id]}" 2>&1 </dev/null &
    VV_PID[$id]=$!
    track "${VV_PID[$id]}"
    say "viewer $id: ${user:-root} -> $target (pid ${VV_PID[$id]})"
}

# ------------------------------------------------------------------ serial console

# serial_guest: build the tiny serial guest (tests/tools/serial_guest.S: a
# boot sector that prints "VMGATE-SERIAL-BANNER: guest up" on COM1 and echoes
# every byte it receives there) into $T/serial-guest.img (a 1.44 MB floppy)
SERIAL_BANNER="VMGATE-SERIAL-BANNER: guest up"
serial_guest() {
    [ -f "$T/serial-guest.img" ] && return 0
    command -v as >/dev/null && command -v ld >/dev/null || skip "no as/ld (binutils)"
    as --32 -o "$T/serial-guest.o" "$TOOLS/serial_guest.S" || fail "as failed"
    ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$T/serial-guest.img" "$T/serial-guest.o" ||
        fail "ld failed"
    [ "$(stat -c %s "$T/serial-guest.img")" = 512 ] || fail "the boot sector is not 512 bytes"
    truncate -s 1474560 "$T/serial-guest.img"
}

# start_serial_qemu NAME: QEMU booting the serial guest, paused (-S: the test
# sends "cont" once vmgate is its serial client), with
#   -chardev socket,id=s0,path=$T/NAME.serial,server=on,wait=off -serial chardev:s0
# and a VNC socket like start_qemu NAME unix.  SERIAL_BACKEND[NAME] = unix:PATH.
declare -A SERIAL_BACKEND=()
start_serial_qemu() {
    local name=$1
    serial_guest
    rm -f "$T/$name.serial"
    start_qemu "$name" unix -S -drive "file=$T/serial-guest.img,format=raw,if=floppy" \
        -chardev "socket,id=s0,path=$T/$name.serial,server=on,wait=off" -serial chardev:s0
    wait_for 10 test -S "$T/$name.serial" || fail "QEMU $name: no serial socket"
    SERIAL_BACKEND[$name]=unix:$T/$name.serial
}

# serialc ARGS...: tests/tools/serialc.py (output to $T/serialc.N, path in SC)
SC_N=0
serialc() {
    SC_N=$((SC_N + 1))
    SC=$T/serialc.$SC_N
    "$@" >"$SC" 2>&1 || true
    add_log "$SC"
}
sc_has() { grep -Eq -- "$1" "$SC" || { cat "$SC"; fail "${CASE:-serial}: expected '$1'"; }; }
sc_hasnt() { ! grep -Eq -- "$1" "$SC" || { cat "$SC"; fail "${CASE:-serial}: unexpected '$1'"; }; }
sc_val() { sed -n "s/^$1=//p" "$SC" | tail -n 1; }

# tmux on a private server for interactive terminal tests (killed at exit):
# tmx ARGS... runs tmux -L <private socket> ARGS...; tmx_screen ID prints the pane
TMUX_SOCK=
tmx() {
    if [ -z "$TMUX_SOCK" ]; then
        command -v tmux >/dev/null || skip "no tmux (scripts/deps.sh)"
        TMUX_SOCK=vmgt$$
        at_cleanup "tmux -L $TMUX_SOCK kill-server 2>/dev/null || true"
    fi
    tmux -L "$TMUX_SOCK" "$@"
}
tmx_screen() { tmx capture-pane -p -J -S -200 -t "$1" 2>/dev/null || true; }
tmx_has() { tmx_screen "$1" | grep -Eq -- "$2"; }
# tmx_expect ID ERE [SECONDS]: wait until the pane shows ERE
tmx_expect() {
    wait_for "${3:-15}" tmx_has "$1" "$2" ||
        { echo "--- pane $1 ---"; tmx_screen "$1"; fail "pane $1 never showed: $2"; }
}
