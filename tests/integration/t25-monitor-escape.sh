#!/bin/bash
# t25-monitor-escape: a QEMU started without -qmp/-monitor keeps its HMP monitor
# on a virtual console, and its VNC server switches to it on Ctrl-Alt-2; typing
# "quit" there ends QEMU (and "migrate exec:..." would run host commands).
# vmgate drops the key-downs that would switch (qemu_consoles = block, default).
#   through vmgate (block), each its own session, then "quit" + Return:
#     Ctrl_L + Alt_L + '2' (twice in one session: one log line per session)
#     Control_R + Alt_L + '2'
#     Ctrl_L + Meta_L + Shift_L + '@'
#     QEMU extended key events by scancode (0x1d, 0x38, 0x03; keysym 0)
#     keysyms with high bits set (QEMU cuts them to 16 bits: 0x01000032 is '2')
#     Ctrl+Alt held in one session, '2' pressed in another (QEMU's keyboard
#       state is shared by every VNC client of the VM)
#     -> QEMU is still running, one "blocked a QEMU console switch" line for each
#        of the first five sessions (the last pair is defused by key-ups, not blocked)
#   through vmgate with qemu_consoles = allow -> that QEMU exits (the opt-out works)
#   the same keys straight at QEMU's own socket -> QEMU exits (the test can fail)
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'monitor pw'
QEMU_NO_MONITOR=1 start_qemu a unix
QEMU_NO_MONITOR=1 start_qemu b unix
PA=$(free_port)
PB=$(free_port)
write_config "$T/m.conf" -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PA" users=alice \
    vm b vnc="${QEMU_BACKEND[b]}" vnc_port="$PB" users=alice qemu_consoles=allow
start_vmgate "$T/m.conf"

QUIT=(sleep:0.3 type:quit +Return -Return)
N=0
keys() {   # PORT|unix:PATH TOKENS... : one session sending the tokens (all of them,
           # unless MAY_DIE=1: QEMU may be gone before the last one)
    local out=$T/keys.$N
    N=$((N + 1))
    if [ "${1#unix:}" != "$1" ]; then
        "$PY" "$TOOLS/rawrfb.py" keys "$@" >"$out" 2>&1 || true
    else
        local port=$1
        shift
        "$PY" "$TOOLS/rawrfb.py" keys 127.0.0.1 "$port" "$T/tls/ca.crt" alice 'monitor pw' "$@" \
            >"$out" 2>&1 || true
    fi
    add_log "$out"
    grep -qx 'result=ok' "$out" || { cat "$out"; fail "session $N did not log in"; }
    [ -n "${MAY_DIE:-}" ] || grep -q '^sent=' "$out" ||
        { cat "$out"; fail "session $N could not send its keys (QEMU gone?)"; }
}
alive() { kill -0 "${QEMU_PID[$1]}" 2>/dev/null; }
blocked() { grep -c 'blocked a QEMU console switch' "$VMGATE_LOG" || true; }

say "through vmgate (qemu_consoles = block)"
keys "$PA" +Control_L +Alt_L +2 -2 -Alt_L -Control_L "${QUIT[@]}" \
    +Control_L +Alt_L +2 -2 -Alt_L -Control_L "${QUIT[@]}"
keys "$PA" +Control_R +Alt_L +2 -2 -Alt_L -Control_R "${QUIT[@]}"
keys "$PA" +Control_L +Meta_L +Shift_L +@ -@ -Shift_L -Meta_L -Control_L "${QUIT[@]}"
keys "$PA" x+0x1d/0 x+0x38/0 x+0x03/0 x-0x03/0 x-0x38/0 x-0x1d/0 "${QUIT[@]}"
keys "$PA" +0x0100ffe3 +0xabcdffe9 +0x01000032 -0x01000032 -0xabcdffe9 -0x0100ffe3 "${QUIT[@]}"
say "Ctrl+Alt held in one session, '2' in another"
"$PY" "$TOOLS/rawrfb.py" keys 127.0.0.1 "$PA" "$T/tls/ca.crt" alice 'monitor pw' \
    +Control_L +Alt_L sleep:4 -Alt_L -Control_L >"$T/hold.out" 2>&1 &
HOLD=$!
track "$HOLD"
sleep 2
keys "$PA" +2 -2 "${QUIT[@]}"
wait "$HOLD" || true
add_log "$T/hold.out"
sleep 2
alive a || fail "QEMU a exited: a console switch got through vmgate"
[ "$(blocked)" -eq 5 ] || { grep 'console switch' "$VMGATE_LOG"; fail "expected 5 'blocked' lines (one per session), got $(blocked)"; }
say "QEMU a still running; vmgate log: $(grep 'blocked a QEMU console switch' "$VMGATE_LOG" | head -n 1 | sed 's/^.*conn=/conn=/')"

say "through vmgate with qemu_consoles = allow"
MAY_DIE=1 keys "$PB" +Control_L +Alt_L +2 -2 -Alt_L -Control_L "${QUIT[@]}"
wait_for 10 eval '! alive b' || fail "QEMU b still runs: qemu_consoles = allow did not pass the switch"
[ "$(blocked)" -eq 5 ] || fail "a switch was blocked on a VM with qemu_consoles = allow"
say "QEMU b exited (quit typed on its monitor console)"

say "straight at QEMU a's own socket"
MAY_DIE=1 keys "unix:$T/a.vnc" +Control_L +Meta_L +Shift_L +@ -@ -Shift_L -Meta_L -Control_L "${QUIT[@]}"
wait_for 10 eval '! alive a' || fail "QEMU a still runs: the attack does not work, so this test proves nothing"
say "QEMU a exited: the keys vmgate blocked do reach the monitor without it"
exit 0
