#!/bin/bash
# t82-serial: the serial console hub (socket_dir/NAME.serial, serial = unix:PATH).
#   A tiny guest (tests/tools/serial_guest.S: a boot sector printing a banner
#   on COM1 and echoing COM1) under QEMU with -chardev socket,server=on,
#   wait=off -serial chardev:s0, started paused; vmgate connects as QEMU's one
#   client, then the guest runs and prints its banner while nobody is attached.
#   Asserts: the banner is replayed to the first attach (after vmgate's
#   greeting line); typed text comes back (the guest's echo); two sessions:
#   both see output, only the latest types (the earlier one got "X took the
#   keyboard", its typing is not delivered), and gets the keyboard back when
#   the later one leaves; a user outside the ACL gets one line "vmgate: user
#   nobody may not open VM a" and the close, at once, without sending a byte;
#   QEMU killed and restarted: the attached session gets the "closed" and
#   "back" lines, vmgate reconnects, the next banner and echo arrive;
#   processes = 2: only network process 1 is QEMU's client, every attach
#   works; log lines say via=unix and the user.
. "$(dirname "$0")/lib.sh"
need_vmgate
need_root "runuser nobody"

make_certs
make_passwd nobody-here 'unused'
start_serial_qemu a
write_config "$T/a.conf" first_byte_timeout=2s login_timeout=4s -- \
    vm a vnc="${QEMU_BACKEND[a]}" serial="${SERIAL_BACKEND[a]}" users=root
start_vmgate "$T/a.conf" 1
SOCK=$T/run/a.serial
expect_log "listening for vm a \(serial\) on unix:$SOCK"
expect_log "vm=a serial: connected to QEMU's serial port $T/a.serial"
[ "$(stat -c %a "$SOCK")" = 666 ] || fail "$SOCK has mode $(stat -c %a "$SOCK")"
qmp_cmd a cont >/dev/null
sleep 2      # the banner goes out now, with nobody attached

CASE="replay"
serialc "$PY" "$TOOLS/serialc.py" run "$SOCK" "wait:$SERIAL_BANNER"
sc_has "^out='\[vmgate: serial console of VM a, root has the keyboard\]\\\\r\\\\n$SERIAL_BANNER"
say "first attach: greeting, then the banner printed before anyone was there"
expect_log "vm=a user=root from=uid:0 via=unix: session started \(serial console"

CASE="echo"
serialc "$PY" "$TOOLS/serialc.py" run "$SOCK" "wait:has the keyboard" send:hello-serial-42 \
    mark wait:hello-serial-42
sc_hasnt '^timeout='
say "typed text came back through the guest"

CASE="two sessions"
serialc "$PY" "$TOOLS/serialc.py" two "$SOCK"
sc_has '^a_saw_takeover=yes'; sc_has '^a_sees_b=yes'; sc_has '^b_sees_b=yes'
sc_has '^a_typing_delivered=no'; sc_has '^a_got_keyboard_back=yes'; sc_has '^a_typing_after=yes'
sc_has "^a_out=.*root took the keyboard"
say "two sessions: both see output, only the latest types; the keyboard comes back"

CASE="refused"
serialc runuser -u nobody -- "$PY" "$TOOLS/serialc.py" run "$SOCK" drain:3
sc_has "^out='vmgate: user nobody may not open VM a\\\\r\\\\n'$"
sc_has '^closed=yes'
"$PY" -c "import sys; sys.exit(0 if float('$(sc_val elapsed)') < 2 else 1)" ||
    fail "refusal took $(sc_val elapsed)s"
expect_log "vm=a from=uid:$(id -u nobody) via=unix: login failed for user \"nobody\""
say "nobody: '$(sc_val out)'"

CASE="QEMU restart"
SERIALC_TRACE=1 "$PY" "$TOOLS/serialc.py" run "$SOCK" "wait:has the keyboard" mark "wait:serial port closed" \
    mark "wait:serial port is back" mark "wait:$SERIAL_BANNER" send:after-restart \
    mark wait:after-restart >"$T/restart.out" 2>"$T/restart.trace" &
RPID=$!
add_log "$T/restart.trace"
track $RPID
add_log "$T/restart.out"
sleep 1
kill "${QEMU_PID[a]}"
wait "${QEMU_PID[a]}" 2>/dev/null || true
expect_log "vm=a serial: QEMU's serial port .* closed .*; reconnecting"
start_serial_qemu a
wait_for 15 eval '[ "$(grep -c "vm=a serial: connected to QEMU" "$VMGATE_LOG")" -ge 2 ]' ||
    fail "vmgate did not reconnect to the restarted QEMU"
qmp_cmd a cont >/dev/null
wait_for 20 _not_alive $RPID || fail "the session did not see the restarted guest"
SC=$T/restart.out
sc_hasnt '^timeout='
sc_has "serial port closed.*serial port is back.*$SERIAL_BANNER.*after-restart"
say "QEMU restarted: vmgate reconnected, the session saw the new banner and echo"
vmgate_alive || fail "vmgate died"
stop_vmgate

CASE="processes=2"
write_config "$T/p2.conf" processes=2 -- \
    vm a vnc="${QEMU_BACKEND[a]}" serial="${SERIAL_BACKEND[a]}" users=root
start_vmgate "$T/p2.conf" 1
expect_log "vm=a serial: connected to QEMU's serial port"
for i in 1 2 3 4; do
    serialc "$PY" "$TOOLS/serialc.py" run "$SOCK" "wait:has the keyboard" send:p2-$i mark wait:p2-$i
    sc_hasnt '^timeout='
done
n=$(grep -c "serial: connected to QEMU" "$VMGATE_LOG")
[ "$n" = 1 ] || fail "processes = 2: $n processes connected to QEMU's serial port (expected 1)"
expect_log "net1.*session started \(serial console"
! log_has "net2.*session started \(serial" || fail "network process 2 took a serial session"
say "processes = 2: one QEMU client (net1), every attach served"
stop_vmgate

CASE="refusal after first_byte_timeout"
# the client owes no byte on NAME.serial (vmgate speaks first): a refused
# client that stays silent still gets its line after fail_delay, even when
# that is longer than first_byte_timeout
write_config "$T/fb.conf" fail_delay=3s first_byte_timeout=1s login_timeout=8s -- \
    vm a vnc="${QEMU_BACKEND[a]}" serial="${SERIAL_BACKEND[a]}" users=root
start_vmgate "$T/fb.conf" 1
expect_log "vm=a serial: connected to QEMU's serial port"
serialc runuser -u nobody -- "$PY" "$TOOLS/serialc.py" run "$SOCK" drain:6
sc_has "^out='vmgate: user nobody may not open VM a\\\\r\\\\n'$"
say "silent refused client, fail_delay 3s > first_byte_timeout 1s: '$(sc_val out)' after $(sc_val elapsed)s"
stop_vmgate

