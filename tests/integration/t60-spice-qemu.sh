#!/bin/bash
# t60-spice-qemu: SPICE end to end with a real QEMU (-vga qxl, SPICE on a unix
# socket with no ticket, a QMP socket) behind the gateway with auth = file.
#   - spicy-screenshot through the gateway (SASL PLAIN, CA via SSL_CERT_FILE)
#     saves the SeaBIOS screen, which matches QEMU's own screendump;
#   - QEMU's console cannot be opened without the gateway, before and after
#     the gateway set its random backend ticket over QMP;
#   - a wrong password and a user not in the ACL are refused: spicy exits 1,
#     the raw client sees SASL result 7 (permission denied), the log says why;
#   - every channel of a session (two QXL displays, inputs, cursor) links with
#     one auth helper call; a channel for an unknown session gets 8 (bad
#     connection id); another user cannot join alice's session;
#   - with processes = 2 every channel lands in network process 1 and three
#     screenshot sessions in a row show the screen.
. "$(dirname "$0")/lib.sh"
. "$TOOLS/spice_lib.sh"
spice_need_viewer
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"

make_certs
make_passwd alice 'alice-good-pw'
make_passwd bob 'bob-good-pw'
make_passwd carol 'carol-good-pw'
start_qemu_spice a -device qxl
PORT=$(free_port)
write_config "$T/vmgate.conf" fail_delay=1s -- \
    vm a spice="unix:$T/a.spice" spice_port="$PORT" qmp="$T/a.qmp" users="alice bob"

# Before the gateway exists, QEMU's console refuses everyone (no ticket set).
for pw in '' x alice-good-pw; do
    rc=0; timeout 20 spicy-screenshot --uri "spice+unix://$T/a.spice" -w "$pw" -o "$T/direct.ppm" \
        >"$T/direct.log" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || fail "QEMU's SPICE console opened without the gateway (password '$pw')"
done
say "QEMU's console refuses direct viewers before the gateway runs"

start_spice_gateway "$T/vmgate.conf"
wait_guest_stable a

# 1. the SeaBIOS screen through the gateway
spice_shot alice 'alice-good-pw' "$PORT" "$T/shot.png" >"$T/shot.log" ||
    { cat "$T/shot.log"; fail "spicy-screenshot through the gateway failed"; }
screendump a "$T/ref.png"
"$PY" "$TOOLS/imgcmp.py" notblank "$T/shot.png" >/dev/null || fail "the screenshot is blank"
res=$("$PY" "$TOOLS/imgcmp.py" compare "$T/shot.png" "$T/ref.png") ||
    fail "spicy-screenshot's image does not match QEMU's screendump: $res"
say "spicy-screenshot through the gateway shows QEMU's screen: $res"
expect_log 'conn=[0-9]+ vm=a user=alice from=127\.0\.0\.1: session started \(spice, backend unix:'
expect_log 'user=alice from=[^ ]+: display:0 channel joined session 0x[0-9a-f]{8} \(login reused'
[ "$(count_log 'user "alice" authenticated')" -eq 1 ] ||
    fail "expected exactly one helper login for the screenshot session"

# 2. QEMU's console still refuses direct viewers: the ticket is random and only in vmgate
for pw in '' x alice-good-pw; do
    rc=0; timeout 20 spicy-screenshot --uri "spice+unix://$T/a.spice" -w "$pw" -o "$T/direct.ppm" \
        >"$T/direct.log" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || fail "QEMU's SPICE console opened without the gateway (password '$pw')"
done
grep -q 'expire_password\|set_password' "$VMGATE_LOG" && fail "QMP commands (with the ticket) in the log"
grep -Eq '(^|[^0-9a-f])[0-9a-f]{48}([^0-9a-f]|$)' "$VMGATE_LOG" && fail "a 48-hex-digit ticket in the log"
say "QEMU's console still refuses direct viewers"

# 3. refusals: wrong password, not in the ACL
refused() {   # USER PASS LOG-REASON
    local rc=0
    spice_shot "$1" "$2" "$PORT" "$T/no.png" >"$T/no.$1.log" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || fail "spicy-screenshot as $1 with a bad login got in"
    grep -q 'event: 23' "$T/no.$1.log" || { cat "$T/no.$1.log"; fail "$1: no auth error (event 23) in spicy-screenshot"; }
    expect_log "conn=[0-9]+ vm=a from=[^ ]+: login failed for user \"$1\": $3"
    spice_raw "$PORT" login "$1" "$2" >"$T/raw.$1" 2>&1 || true
    grep -qx 'link_error=0' "$T/raw.$1" && grep -qx 'sasl_result=7' "$T/raw.$1" ||
        { cat "$T/raw.$1"; fail "raw login as $1: expected SASL result 7 (permission denied)"; }
}
refused alice 'alice-bad-pw' 'bad password'
refused carol 'carol-good-pw' 'not allowed on this vm'
refused mallory 'whatever' 'unknown user'
say "wrong password, not in the ACL and unknown user refused with 7"
# fail_delay: the refusal comes after ~1 s
el=$(sed -n 's/^auth_elapsed=//p' "$T/raw.alice")
"$PY" -c "import sys; sys.exit(0 if 0.8 <= float('${el:-0}') <= 6 else 1)" ||
    fail "failed login answered after ${el:-?}s, expected about fail_delay=1s"

# 4. every channel of a session links with one helper call (2 displays, inputs, cursor)
if /usr/bin/python3 -c 'import gi; gi.require_version("SpiceClientGLib", "2.0"); from gi.repository import SpiceClientGLib' 2>/dev/null; then
    before=$(count_log 'user "alice" authenticated')
    joined_before=$(count_log 'channel joined session')
    spice_clip alice 'alice-good-pw' "$PORT" channels 30 >"$T/channels.log" 2>&1 ||
        { cat "$T/channels.log"; fail "not every channel of the session opened"; }
    n=$(sed -n 's/^ALL //p' "$T/channels.log")
    [ -n "$n" ] || { cat "$T/channels.log"; fail "the channels client did not report how many channels opened"; }
    grep -q '^OPENED 2:1$' "$T/channels.log" || { cat "$T/channels.log"; fail "second display channel did not open"; }
    after=$(count_log 'user "alice" authenticated')
    joined=$(( $(count_log 'channel joined session') - joined_before ))
    [ $((after - before)) -eq 1 ] || fail "$((after - before)) helper logins for one session (expected 1)"
    [ "$joined" -ge $((n - 1)) ] || fail "only $joined channels joined without a login, $n opened"
    say "$n channels opened with one helper call ($joined joined the session)"
else
    say "python3-gi / gir1.2-spiceclientglib-2.0 missing: multi-channel check done with the raw client only"
fi

# 5. a channel for an unknown session, and another user joining alice's session
spice_raw "$PORT" login alice 'alice-good-pw' 2 0x12345678 >"$T/raw.unknown" 2>&1 || true
grep -qx 'link_error=8' "$T/raw.unknown" || { cat "$T/raw.unknown"; fail "unknown session: expected link error 8"; }
expect_log 'refused display:0 channel for unknown session 0x12345678'
spice_raw "$PORT" login alice 'alice-good-pw' 1 0 8 >"$T/raw.main" 2>&1 &
mainpid=$!
track "$mainpid"
wait_for 15 grep -q '^session=' "$T/raw.main" || { cat "$T/raw.main"; fail "raw main channel got no INIT"; }
sid=$(sed -n 's/^session=//p' "$T/raw.main")
before=$(count_log 'user "bob" authenticated')
spice_raw "$PORT" login bob 'bob-good-pw' 2 "$sid" >"$T/raw.bob" 2>&1 || true
grep -qx 'sasl_result=7' "$T/raw.bob" || { cat "$T/raw.bob"; fail "bob joined alice's session"; }
expect_log "login failed for user \"bob\": display:0 channel for session $sid of user \"alice\""
[ "$(count_log 'user "bob" authenticated')" -eq "$before" ] || fail "bob's join ran a helper login"
# (an inputs channel: a raw display channel that leaves at once can crash QEMU 7.2's
# display worker, which is not what this checks)
spice_raw "$PORT" login alice 'alice-good-pw' 3 "$sid" >"$T/raw.join" 2>&1 || true
grep -qx 'link_result=0' "$T/raw.join" || { cat "$T/raw.join"; fail "alice's second channel was refused"; }
say "unknown session refused with 8; bob cannot join alice's session; alice can"

# 6. processes = 2: a session's channels are separate connections; they all
# land in network process 1, so every screenshot session links and shows
stop_vmgate
write_config "$T/vmgate2.conf" fail_delay=1s processes=2 -- \
    vm a spice="unix:$T/a.spice" spice_port="$PORT" qmp="$T/a.qmp" users="alice bob"
start_spice_gateway "$T/vmgate2.conf"
expect_log 'net2: [a-z]+: network process 2/2 ready'
screendump a "$T/ref2.png"
for i in 1 2 3; do
    spice_shot alice 'alice-good-pw' "$PORT" "$T/shot2.$i.png" >"$T/shot2.$i.log" ||
        { cat "$T/shot2.$i.log"; fail "spicy-screenshot $i through processes = 2 failed"; }
    res=$("$PY" "$TOOLS/imgcmp.py" compare "$T/shot2.$i.png" "$T/ref2.png") ||
        fail "screenshot $i through processes = 2 does not match the screendump: $res"
done
[ "$(count_log 'net1: [a-z]+: conn=[0-9]+ vm=a user=alice from=[^ ]+: session started \(spice')" -eq 3 ] ||
    fail "expected 3 SPICE sessions started in net1: $(grep 'session started' "$VMGATE_LOG" | tr '\n' ' ')"
log_has 'net2: .*(spice|channel)' && fail "net2 took a SPICE connection: $(grep -E 'net2: .*(spice|channel)' "$VMGATE_LOG" | head -n 3)"
say "processes = 2: three screenshot sessions, every channel in net1"

kill -0 "${QEMU_PID[a]}" 2>/dev/null || fail "QEMU died during the test"
for pw in alice-good-pw alice-bad-pw bob-good-pw carol-good-pw; do
    grep -q -- "$pw" "$VMGATE_LOG" && fail "password '$pw' appears in the gateway's log"
done
true
