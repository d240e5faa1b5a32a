#!/bin/bash
# t19-processes: vmgate with "processes = 2" (the parent binds the listener,
# then forks two network processes that share it).  Proves:
#  - both log "network process K/2 ready" under tags net1/net2, and the parent
#    has exactly 3 children (2 network processes + the auth helper);
#  - each network process serves on its own: with net1 stopped (SIGSTOP) a
#    login is served by net2, and the other way round;
#  - a TigerVNC viewer shows the VM; SIGKILL of the OTHER network process: the
#    parent logs the death and starts a replacement, which serves a login on
#    its own (survivor stopped); the viewer keeps its session and its pixels;
#  - SIGHUP to the parent (after the certificate and CA were replaced):
#    net1 and net2 each reload the certificate, once; a network process
#    started after that (another replacement) serves the new certificate too
#    (the login verifies against the new CA);
#  - connection ids are unique across processes and the replacement (one
#    counter shared by all of them: 1 to 5 in order of arrival);
#  - SIGTERM: exit 0, "stopped", and no child (network processes, the
#    replacement, the auth helper) is left alive.
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'procs pw'
start_qemu a unix
PORT=$(free_port)
write_config "$T/vmgate.conf" processes=2 -- vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users=alice
start_vmgate "$T/vmgate.conf"
P=$VMGATE_PID
AUTH_RE='conn=[0-9]+ vm=a from=127\.0\.0\.1: user "alice" authenticated$'

ready_re() { echo "^vmgate\[[0-9]+\] net$1: [a-z]+: network process $1/2 ready$"; }
ready_pid() { grep -E "$(ready_re "$1")" "$VMGATE_LOG" | tail -n 1 | sed -E 's/^vmgate\[([0-9]+)\].*/\1/'; }
count() { grep -Ec -- "$1" "$VMGATE_LOG" || true; }
alive() { [ -e "/proc/$1" ] && ! grep -Eq '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
is_child() { pgrep -P "$P" | grep -qx "$1"; }

# ---- 1. two network processes + the auth helper
expect_log "$(ready_re 1)"
expect_log "$(ready_re 2)"
expect_log "^vmgate\[$P\] main: [a-z]+: started 2 network processes$" 2
declare -A NET=()
for K in 1 2; do
    [ "$(count "$(ready_re $K)")" -eq 1 ] || fail "net$K logged 'ready' $(count "$(ready_re $K)") times, expected once"
    NET[$K]=$(ready_pid $K)
    track "${NET[$K]}"
done
[ "${NET[1]}" != "${NET[2]}" ] || fail "net1 and net2 log the same pid ${NET[1]}"
mapfile -t KIDS < <(pgrep -P "$P" | sort -n)
[ "${#KIDS[@]}" -eq 3 ] ||
    fail "vmgate (pid $P) has ${#KIDS[@]} child processes (${KIDS[*]}), expected 3 (net1, net2, auth helper)"
HELPER=
for k in "${KIDS[@]}"; do
    [ "$k" = "${NET[1]}" ] || [ "$k" = "${NET[2]}" ] || HELPER=$k
done
is_child "${NET[1]}" && is_child "${NET[2]}" ||
    fail "net1 (pid ${NET[1]}) / net2 (pid ${NET[2]}) are not both children of vmgate (pid $P; children: ${KIDS[*]})"
track "$HELPER"
say "parent $P: net1 ${NET[1]}, net2 ${NET[2]}, auth helper $HELPER"

# login_on K WHY: a rawrfb login must succeed and be served by netK (current pid NET[K])
login_on() {
    local k=$1 n out line
    n=$(count "$AUTH_RE")
    out=$("$PY" "$TOOLS/rawrfb.py" --timeout 10 login 127.0.0.1 "$PORT" "$CA" alice 'procs pw' 2>&1) || true
    grep -qx 'result=ok' <<<"$out" || fail "login ($2): rawrfb did not log in: $(tr '\n' ' ' <<<"$out")"
    [ "$(count "$AUTH_RE")" -eq $((n + 1)) ] ||
        fail "login ($2): expected exactly one new 'authenticated' line, log has $(count "$AUTH_RE") (was $n)"
    line=$(grep -E -- "$AUTH_RE" "$VMGATE_LOG" | tail -n 1)
    [[ $line =~ ^vmgate\[${NET[$k]}\]\ net$k: ]] ||
        fail "login ($2): expected net$k (pid ${NET[$k]}) to serve it, log says: $line"
    say "login ($2) served by net$k: $line"
}

# ---- 2. each process serves on its own
kill -STOP "${NET[1]}"; login_on 2 "net1 stopped"; kill -CONT "${NET[1]}"
kill -STOP "${NET[2]}"; login_on 1 "net2 stopped"; kill -CONT "${NET[2]}"

# ---- 3. a viewer's session survives the death of the other network process
n=$(count "$AUTH_RE")
vncviewer_start v1 alice 'procs pw' "$PORT"
expect_viewer_connected v1
expect_viewer_shows v1 a
[ "$(count "$AUTH_RE")" -eq $((n + 1)) ] || fail "expected one 'authenticated' line for the viewer"
VLINE=$(grep -E -- "$AUTH_RE" "$VMGATE_LOG" | tail -n 1)
[[ $VLINE =~ ^vmgate\[([0-9]+)\]\ net([12]):\ [a-z]+:\ conn=([0-9]+)\  ]] || fail "viewer's login line has no netK tag: $VLINE"
V=${BASH_REMATCH[2]} VCONN=${BASH_REMATCH[3]} O=$((3 - BASH_REMATCH[2]))
[ "${BASH_REMATCH[1]}" = "${NET[$V]}" ] || fail "viewer's line is from pid ${BASH_REMATCH[1]}, net$V is ${NET[$V]}: $VLINE"
say "viewer v1 is conn=$VCONN in net$V; killing net$O (pid ${NET[$O]})"
OLD=${NET[$O]}
kill -KILL "$OLD"
expect_log "^vmgate\[$P\] main: warn(ing)?: network process $O \(pid $OLD\) died \(.*\); starting a new one" 5
wait_for 5 eval "[ \$(count '$(ready_re $O)') -eq 2 ]" ||
    fail "no second 'network process $O/2 ready' line within 5 s of net$O's death"
NET[$O]=$(ready_pid $O)
track "${NET[$O]}"
[ "${NET[$O]}" != "$OLD" ] && is_child "${NET[$O]}" ||
    fail "replacement net$O has pid ${NET[$O]} (old $OLD), not a new child of vmgate (children: $(pgrep -P "$P" | tr '\n' ' '))"
alive "$OLD" && fail "net$O (pid $OLD) still alive after SIGKILL"
[ "$(pgrep -P "$P" | wc -l)" -eq 3 ] || fail "vmgate has $(pgrep -P "$P" | wc -l) children after the replacement, expected 3"
say "net$O replaced: pid ${NET[$O]}"
# the replacement serves on its own (survivor stopped)
kill -STOP "${NET[$V]}"; login_on "$O" "replacement net$O, net$V stopped"; kill -CONT "${NET[$V]}"
viewer_alive v1 || fail "viewer v1 exited after net$O was killed: $(tail -n 2 "${VV_LOG[v1]}")"
viewer_log_has v1 "$VV_FAIL" && fail "viewer v1 logged a disconnect: $(grep -E "$VV_FAIL" "${VV_LOG[v1]}" | tail -n 1)"
log_has "conn=$VCONN .*session ended" && fail "viewer's session ended: $(grep "conn=$VCONN .*session ended" "$VMGATE_LOG")"
expect_viewer_shows v1 a
alive "${NET[$V]}" || fail "net$V (viewer's process) died"

# ---- 4. SIGHUP is forwarded: one reload per network process
HUP_RE='SIGHUP: reloaded certificate'
[ "$(count "$HUP_RE")" -eq 0 ] || fail "a 'reloaded certificate' line before any SIGHUP"
# a new CA and certificate in place: anything still serving the old one
# fails verification against $CA from now on
"$VMGATE" certs init --dir "$T/tls" --name localhost,127.0.0.1,::1 --force >"$T/certs2.log" 2>&1 ||
    { cat "$T/certs2.log"; fail "vmgate certs init --force failed"; }
kill -HUP "$P"
wait_for 5 eval "[ \$(count '$HUP_RE') -ge 2 ]" ||
    fail "expected 2 '$HUP_RE' lines within 5 s of SIGHUP, got $(count "$HUP_RE")"
sleep 1
[ "$(count "$HUP_RE")" -eq 2 ] || { grep -E "$HUP_RE" "$VMGATE_LOG"; fail "expected exactly 2 '$HUP_RE' lines, got $(count "$HUP_RE")"; }
for K in 1 2; do
    log_has "^vmgate\[${NET[$K]}\] net$K: [a-z]+: $HUP_RE $T/tls/server\.crt" ||
        fail "no '$HUP_RE $T/tls/server.crt' line from net$K (pid ${NET[$K]}): $(grep -E "$HUP_RE" "$VMGATE_LOG" | tr '\n' ' ')"
done
vmgate_alive || fail "vmgate died after SIGHUP"
# a replacement started after the reload serves the new certificate
OLD2=${NET[$O]}
kill -KILL "$OLD2"
wait_for 5 eval "[ \$(count '$(ready_re $O)') -eq 3 ]" ||
    fail "no third 'network process $O/2 ready' line within 5 s of killing net$O again"
NET[$O]=$(ready_pid $O)
track "${NET[$O]}"
kill -STOP "${NET[$V]}"; login_on "$O" "replacement after SIGHUP, new CA"; kill -CONT "${NET[$V]}"

# ---- 5. connection ids unique across processes (and the replacement)
IDS=$(grep -E -- "$AUTH_RE" "$VMGATE_LOG" | sed -E 's/^vmgate\[[0-9]+\] net([12]): [a-z]+: conn=([0-9]+) .*/\1 \2/')
[ "$(wc -l <<<"$IDS")" -eq 5 ] || fail "expected 5 'authenticated' lines, got: $(tr '\n' ',' <<<"$IDS")"
DUPS=$(awk '{print $2}' <<<"$IDS" | sort -n | uniq -d | tr '\n' ' ')
[ -z "$DUPS" ] || fail "duplicate connection ids: $DUPS (net,id: $(tr '\n' ',' <<<"$IDS"))"
[ "$(awk '{print $2}' <<<"$IDS" | xargs)" = "1 2 3 4 5" ] ||
    fail "connection ids are not 1 2 3 4 5 in order of arrival (net,id: $(tr '\n' ',' <<<"$IDS"))"
say "connection ids (net id): $(tr '\n' ',' <<<"$IDS")"

# ---- 6. SIGTERM stops everything
stop_viewer v1
stop_vmgate
log_has "^vmgate\[$P\] main: [a-z]+: stopped$" || fail "no 'stopped' line from the parent"
for p in "${NET[1]}" "${NET[2]}" "$OLD" "$OLD2" "$HELPER"; do
    alive "$p" && fail "process $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)) still alive after vmgate exited"
done
say "vmgate exited 0; net1, net2, the replacement and the auth helper are gone"
