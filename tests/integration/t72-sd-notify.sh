#!/bin/bash
# t72-sd-notify: vmgate under a notify socket (systemd Type=notify, played by
# tests/tools/sdnotify.py) tells the service manager its state, and only from
# the PID it was started as (the unit's NotifyAccess=main):
#  - READY=1 once every listener accepts connections (the tool connects to
#    each port when READY=1 arrives), not before;
#  - SIGHUP -> RELOADING=1 (with MONOTONIC_USEC=) and then READY=1;
#  - SIGTERM -> STOPPING=1, then a clean exit;
#  - no message from any other process (auth helper, network processes).
# Run twice: processes = 1 (the main process is the network process), and
# processes = 2 (the main process is the supervisor; as root also with
# user = nobody, so the messages after the privilege drop still come from
# the PID systemd would know as MAINPID).
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'notify pw'

# run_case NAME [key=value...]: one vmgate start/reload/stop under a notify socket
run_case() {
    local name=$1 sock out p1 p2 lp n
    shift
    sock=$T/$name.sock
    out=$T/$name.notify
    p1=$(free_port)
    p2=$(free_port)
    "$PY" "$ROOT/tests/tools/sdnotify.py" "$sock" "$p1" "$p2" >"$out" 2>"$T/$name.notify.err" &
    lp=$!
    track "$lp"
    add_log "$out"
    wait_for 5 test -S "$sock" || fail "$name: the notify listener did not bind $sock"
    # the backend need not run: listeners bind and READY=1 comes without it
    write_config "$T/$name.conf" "$@" -- \
        vm a vnc=127.0.0.1:1 vnc_port="$p1" users=alice \
        vm b vnc=127.0.0.1:2 vnc_port="$p2" users=alice
    VMGATE_ENV=(NOTIFY_SOCKET="$sock")
    start_vmgate "$T/$name.conf"
    wait_for 5 grep -q 'READY=1' "$out" || fail "$name: no READY=1 within 5 s of the listeners"
    grep -m1 'READY=1' "$out" | grep -q 'listening=yes' ||
        fail "$name: READY=1 arrived before every port accepted connections: $(grep -m1 READY=1 "$out")"

    kill -HUP "$VMGATE_PID"
    wait_for 5 grep -q 'RELOADING=1' "$out" || fail "$name: no RELOADING=1 after SIGHUP"
    grep 'RELOADING=1' "$out" | grep -q 'MONOTONIC_USEC=[0-9]' ||
        fail "$name: RELOADING=1 without MONOTONIC_USEC="
    # a READY=1 after the RELOADING=1 line
    wait_for 5 sh -c "sed -n '/RELOADING=1/,\$p' '$out' | grep -q 'READY=1'" ||
        fail "$name: no READY=1 after RELOADING=1"

    stop_vmgate
    wait_for 5 grep -q 'STOPPING=1' "$out" || fail "$name: no STOPPING=1 after SIGTERM"

    n=$(grep -vc "^pid=$VMGATE_PID " "$out" || true)
    [ "$n" -eq 0 ] || { cat "$out"; fail "$name: $n message(s) from a process other than the main PID $VMGATE_PID"; }
    n=$(grep -c 'READY=1' "$out" || true)
    [ "$n" -eq 2 ] || { cat "$out"; fail "$name: expected 2 READY=1 (start, reload), got $n"; }
    say "$name: $(tr '\n' ';' <"$out")"
    kill "$lp"
}

run_case single processes=1
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    run_case multi processes=2 user=nobody
    grep -q "^pid=$VMGATE_PID uid=$(id -u nobody) msg=READY=1" "$T/multi.notify" ||
        fail "multi: READY=1 did not come from the supervisor after it became nobody"
else
    run_case multi processes=2
fi
true
