#!/bin/bash
# t79-reload-sockets: live reload with every socket_dir way in (NAME.vnc,
# NAME.serial, NAME.spice), the serial hubs and idle_pause, on real QEMU.
#   VM a: serial guest (tests/tools/serial_guest.S) with vnc + serial; VM b
#   (added by a reload): the same guest with vnc + serial + SPICE (qxl) + qmp.
# Asserts:
#  - a serial session on a, opened before the reloads, goes on across the
#    reload that adds b (its typing still echoes at the end) and a new attach
#    on a.serial after the reload works;
#  - after `vmgate reload` adding b: b.vnc speaks RFB (a full local login),
#    b.serial replays the guest's banner after vmgate's greeting, b.spice
#    answers a SPICE link with result 0 (each socket serves its own protocol);
#  - idle_pause = 2s added to b by a reload takes effect: QEMU b is paused by
#    vmgate (query-status on the test's monitor, `vmgate status --json`), and
#    a login on b.vnc resumes it; idle_pause removed by a reload while vmgate
#    had b paused: the next login still resumes it, and no pause follows;
#  - a reload removing b with a serial session open on b: the session gets the
#    line "[vmgate: session ended: vm b was removed from the configuration]"
#    and the close; b.vnc, b.serial and b.spice are gone; the log has the kick.
# Fails before branch reloadint: b.serial/b.spice were never bound on reload
# (and a.serial was closed by it), hubs were keyed by a pointer into the old
# config, and idle slots were only made at start.
. "$(dirname "$0")/lib.sh"
need_vmgate
need_root "socket_dir sockets are bound by the root auth helper"

make_certs
make_passwd nobody-here 'unused'
reload_cmd() {   # -> RL_OUT, RL_RC
    RL_RC=0
    RL_OUT=$("$VMGATE" reload --socket "$T/control" 2>&1) || RL_RC=$?
    say "processes=$procs: vmgate reload: exit $RL_RC: $RL_OUT"
}
qstate() { qmp_cmd b query-status 2>/dev/null | sed -n 's/.*"status": *"\([a-z-]*\)".*/\1/p'; }

run_case() {   # PROCESSES
    local procs=$1 out ext q
    start_serial_qemu a
    cp "$T/serial-guest.img" "$T/b.img"    # (QEMU a holds the image's write lock)
    rm -f "$T/b.serial"
    start_qemu b unix -S -vga qxl -drive "file=$T/b.img,format=raw,if=floppy" \
        -chardev "socket,id=s0,path=$T/b.serial,server=on,wait=off" -serial chardev:s0 \
        -qmp "unix:$T/b.qmp,server=on,wait=off" -spice "unix=on,addr=$T/b.spice"
    wait_for 10 test -S "$T/b.serial" || fail "processes=$procs: QEMU b: no serial socket"
    wait_for 10 test -S "$T/b.spice" || fail "processes=$procs: QEMU b: no SPICE socket"
    CONF=$T/vmgate.conf
    A=(vm a vnc="${QEMU_BACKEND[a]}" serial="unix:$T/a.serial" users=root)
    SPORT=$(free_port)
    B=(vm b vnc="${QEMU_BACKEND[b]}" serial="unix:$T/b.serial" spice="unix:$T/b.spice" spice_port="$SPORT" qmp="$T/b.qmp"
       users=root)
    write_config "$CONF" processes="$procs" first_byte_timeout=2s login_timeout=6s audit="$T/audit.jsonl.$procs" -- "${A[@]}"
    start_vmgate "$CONF" 1
    [ "$procs" -gt 1 ] && expect_log "network process 2/2 ready"
    expect_log "vm=a serial: connected to QEMU's serial port $T/a.serial"
    qmp_cmd a cont >/dev/null
    sleep 1.5
    run=$T/run

    # a serial session on a that lives across the reload adding b
    "$PY" "$TOOLS/serialc.py" run "$run/a.serial" "wait:has the keyboard" sleep:12 \
        send:a-after-reload-77 mark wait:a-after-reload-77 >"$T/hold_a.out.$procs" 2>&1 &
    HOLD_A=$!
    track $HOLD_A
    add_log "$T/hold_a.out.$procs"
    wait_for 10 grep -q 'session started (serial console' "$VMGATE_LOG" || fail "processes=$procs: no serial session on a"

    CASE="add b"
    write_config "$CONF" processes="$procs" first_byte_timeout=2s login_timeout=6s audit="$T/audit.jsonl.$procs" -- "${A[@]}" "${B[@]}"
    reload_cmd
    [ "$RL_RC" -eq 0 ] || fail "processes=$procs: reload adding b: exit $RL_RC: $RL_OUT"
    grep -q '1 vm(s) added' <<<"$RL_OUT" || fail "processes=$procs: reload adding b said: $RL_OUT"
    for ext in vnc serial spice; do
        [ -S "$run/b.$ext" ] || fail "processes=$procs: no socket $run/b.$ext after the reload"
    done
    expect_log "vm=b serial: connected to QEMU's serial port $T/b.serial"
    qmp_cmd b cont >/dev/null
    sleep 1.5
    out=$("$PY" "$TOOLS/localrfb.py" login "unix:$run/b.vnc" 2>&1) || true
    grep -q "^version=b'RFB 003.00" <<<"$out" && grep -q '^result=ok' <<<"$out" ||
        fail "processes=$procs: b.vnc does not serve RFB: $(tr '\n' ' ' <<<"$out")"
    say "processes=$procs: b.vnc: $(tr '\n' ' ' <<<"$out")"
    serialc "$PY" "$TOOLS/serialc.py" run "$run/b.serial" "wait:$SERIAL_BANNER"
    sc_has "^out='\[vmgate: serial console of VM b, root has the keyboard\]\\\\r\\\\n$SERIAL_BANNER"
    say "processes=$procs: b.serial: the greeting and the banner replayed"
    serialc "$PY" "$TOOLS/serialc.py" spicelink "$run/b.spice"
    sc_has '^result=0$'
    say "processes=$procs: b.spice: SPICE link result 0"
    serialc "$PY" "$TOOLS/serialc.py" run "$run/a.serial" "wait:has the keyboard" send:a-new-attach-5 \
        mark wait:a-new-attach-5
    sc_hasnt '^timeout='
    say "processes=$procs: a.serial: a new attach after the reload echoes"
    wait_for 20 _not_alive $HOLD_A || fail "processes=$procs: the session on a did not finish"
    SC=$T/hold_a.out.$procs
    sc_hasnt '^timeout='
    sc_has '^closed=no'
    say "processes=$procs: a's serial session opened before the reload still echoes after it"

    CASE="idle_pause"
    B2=("${B[@]}" idle_pause=2s)
    write_config "$CONF" processes="$procs" first_byte_timeout=2s login_timeout=6s audit="$T/audit.jsonl.$procs" -- "${A[@]}" "${B2[@]}"
    reload_cmd
    [ "$RL_RC" -eq 0 ] || fail "processes=$procs: reload adding idle_pause: exit $RL_RC: $RL_OUT"
    grep -q '0 vm(s) added, 0 removed, 1 changed' <<<"$RL_OUT" || fail "processes=$procs: reload (idle_pause) said: $RL_OUT"
    wait_for 12 eval '[ "$(qstate)" = paused ]' || fail "processes=$procs: b not paused after idle_pause was added (state $(qstate))"
    expect_log "idle: vm b paused"
    "$VMGATE" status --json --socket "$T/control" >"$T/status.json.$procs" 2>&1 || fail "processes=$procs: status: $(cat "$T/status.json.$procs")"
    grep -qE '"state": ?"paused by vmgate' "$T/status.json.$procs" ||
        { cat "$T/status.json.$procs"; fail "processes=$procs: status --json does not say b is paused by vmgate"; }
    out=$("$PY" "$TOOLS/localrfb.py" login "unix:$run/b.vnc" 2>&1) || true
    grep -q '^result=ok' <<<"$out" || fail "processes=$procs: login on b.vnc while paused: $(tr '\n' ' ' <<<"$out")"
    [ "$(qstate)" = running ] || fail "processes=$procs: b not resumed by a login (state $(qstate))"
    expect_log "idle: vm b resumed"
    say "processes=$procs: idle_pause added by reload: b paused, then woken by a login"
    # paused again, then a reload takes idle_pause away: the next login still wakes it
    wait_for 12 eval '[ "$(qstate)" = paused ]' || fail "processes=$procs: b not paused again after the login left (state $(qstate))"
    write_config "$CONF" processes="$procs" first_byte_timeout=2s login_timeout=6s audit="$T/audit.jsonl.$procs" -- "${A[@]}" "${B[@]}"
    reload_cmd
    [ "$RL_RC" -eq 0 ] || fail "processes=$procs: reload removing idle_pause: exit $RL_RC: $RL_OUT"
    out=$("$PY" "$TOOLS/localrfb.py" login "unix:$run/b.vnc" 2>&1) || true
    grep -q '^result=ok' <<<"$out" || fail "processes=$procs: login on b.vnc after idle_pause was removed: $(tr '\n' ' ' <<<"$out")"
    [ "$(qstate)" = running ] || fail "processes=$procs: b (paused by vmgate) not resumed by a login after idle_pause was removed (state $(qstate))"
    sleep 3
    [ "$(qstate)" = running ] || fail "processes=$procs: b paused again although idle_pause was removed (state $(qstate))"
    say "processes=$procs: idle_pause removed by reload while b was paused: a login woke it, no pause since"

    CASE="remove b"
    "$PY" "$TOOLS/serialc.py" run "$run/b.serial" "wait:has the keyboard" mark \
        "wait:was removed from the configuration" drain:2 >"$T/hold_b.out.$procs" 2>&1 &
    HOLD_B=$!
    track $HOLD_B
    add_log "$T/hold_b.out.$procs"
    wait_for 10 eval '[ "$(grep -c "vm=b .*session started (serial console" "$VMGATE_LOG")" -ge 2 ]' ||
        fail "processes=$procs: no second serial session on b"
    write_config "$CONF" processes="$procs" first_byte_timeout=2s login_timeout=6s audit="$T/audit.jsonl.$procs" -- "${A[@]}"
    kill -HUP "$VMGATE_PID"
    wait_for 20 _not_alive $HOLD_B || fail "processes=$procs: b's serial session did not end"
    SC=$T/hold_b.out.$procs
    sc_hasnt '^timeout='
    sc_has 'session ended: vm b was removed from the configuration'
    sc_has '^closed=yes'
    expect_log "vm=b .*kicked by reload: vm b was removed from the configuration"
    for ext in vnc serial spice; do
        [ -e "$run/b.$ext" ] && fail "processes=$procs: $run/b.$ext is still there after b was removed"
    done
    say "processes=$procs: b removed: its serial session got the reason, its three sockets are gone"
    log_has 'Bad system call|SIGSYS|killed by signal|AddressSanitizer' &&
        fail "processes=$procs: a process died: $(grep -E 'Bad system|killed by|AddressSanitizer' "$VMGATE_LOG")"
    stop_vmgate
    for q in a b; do kill "${QEMU_PID[$q]}"; wait "${QEMU_PID[$q]}" 2>/dev/null || true; done
}

run_case 1
run_case 2
echo PASS
