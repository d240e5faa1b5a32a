#!/bin/bash
# t63-spice-prelogin: nothing reaches QEMU's SPICE server before a login.
# A counting unix-socket relay sits between vmgate and QEMU's SPICE socket.
#   - 20 TLS links that send only the link message (main channel, no
#     credentials) get vmgate's own link reply (error 0, SASL offered) and
#     make no connection to the backend (QEMU would make an RSA key for each);
#   - a real viewer (spicy-screenshot) still gets in through the relay;
#   - a later channel that joins a live session but sends no credentials
#     does not reach the backend either;
#   - channel policy: a usbredir link in a logged-in session is refused with
#     9 (channel not available) and a log line naming the type (spice_channels
#     default); the 17th channel of a session is refused with 9 (at most 16
#     per session, pending links included);
#   - a VM that is not running is answered after the login (SASL 0, link
#     result 9), and a wrong password there still gets 7.
. "$(dirname "$0")/lib.sh"
. "$TOOLS/spice_lib.sh"
spice_need_viewer
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"

make_certs
make_passwd alice 'alice-good-pw'
start_qemu_spice a
"$PY" "$TOOLS/unix_count_relay.py" "$T/relay.spice" "$T/a.spice" "$T/relay.count" \
    >"$T/relay.log" 2>&1 &
track $!
add_log "$T/relay.log"
wait_for 10 test -S "$T/relay.spice" || fail "the counting relay did not start"
relayed() { cat "$T/relay.count"; }

PORT=$(free_port)
PORT_B=$(free_port)
write_config "$T/vmgate.conf" login_timeout=20s max_unauth=64 max_unauth_per_source=32 -- \
    vm a spice="unix:$T/relay.spice" spice_port="$PORT" qmp="$T/a.qmp" users=alice \
    vm b spice="unix:$T/b-not-running.spice" spice_port="$PORT_B" users=alice
start_spice_gateway "$T/vmgate.conf"

# 1. 20 links without credentials, all open at once
for i in $(seq 20); do
    spice_raw "$PORT" link 1 0 3 >"$T/link.$i" 2>&1 &
    track $!
done
wait_for 20 sh -c "[ \$(cat $T/link.* | grep -c '^elapsed=') -ge 20 ]" ||
    { cat "$T"/link.*; fail "the 20 bare links did not finish"; }
n_ok=$(cat "$T"/link.* | grep -c '^link_error=0$' || true)
[ "$n_ok" -eq 20 ] || { cat "$T"/link.*; fail "only $n_ok of 20 bare links got link_error=0"; }
grep -qx 'reply_common_caps=0xd' "$T/link.1" ||
    { cat "$T/link.1"; fail "vmgate's link reply does not offer auth selection + SASL + mini header"; }
[ "$(relayed)" -eq 0 ] ||
    fail "$(relayed) of 20 links without credentials reached QEMU's SPICE server (expected 0)"
say "20 links without credentials: answered by vmgate, 0 backend connections"

# 2. a real viewer gets in through the relay
spice_shot alice 'alice-good-pw' "$PORT" "$T/shot.png" >"$T/shot.log" ||
    { cat "$T/shot.log"; fail "spicy-screenshot could not get in"; }
"$PY" "$TOOLS/imgcmp.py" notblank "$T/shot.png" >/dev/null || fail "blank screenshot"
[ "$(relayed)" -ge 2 ] || fail "the viewer's channels did not go through the relay ($(relayed))"
say "spicy-screenshot got in ($(relayed) backend connections)"

# 3. a session; its later channels without credentials stay away from QEMU
spice_raw "$PORT" login alice 'alice-good-pw' 1 0 30 >"$T/main.out" 2>&1 &
main=$!
track "$main"
wait_for 20 grep -q '^session=' "$T/main.out" || { cat "$T/main.out"; fail "no session"; }
SID=$(sed -n 's/^session=//p' "$T/main.out")
before=$(relayed)
spice_raw "$PORT" link 2 "$SID" 1 >"$T/join.out" 2>&1
grep -qx 'link_error=0' "$T/join.out" || { cat "$T/join.out"; fail "display link of session $SID"; }
[ "$(relayed)" -eq "$before" ] ||
    fail "a display channel of session $SID without credentials reached QEMU"
say "a later channel without credentials: 0 backend connections"

# 4. a channel type not in spice_channels (default: no usbredir)
spice_raw "$PORT" login alice 'alice-good-pw' 9 "$SID" >"$T/usb.out" 2>&1 || true
grep -qx 'link_error=9' "$T/usb.out" || { cat "$T/usb.out"; fail "usbredir link not refused with 9"; }
expect_log "refused usbredir:0 channel: channel type usbredir is not in spice_channels"
[ "$(relayed)" -eq "$before" ] || fail "the refused usbredir link reached QEMU"
say "usbredir refused with 9"

# 5. at most 16 channels per session: main + 15 pending display links, then the 17th
for i in $(seq 15); do
    spice_raw "$PORT" link 2 "$SID" 15 >"$T/ch.$i" 2>&1 &
    track $!
done
wait_for 20 sh -c "[ \$(cat $T/ch.* | grep -c '^link_error=0') -ge 15 ]" ||
    { cat "$T"/ch.*; fail "15 display links of session $SID were not all answered"; }
spice_raw "$PORT" link 2 "$SID" 1 >"$T/ch17.out" 2>&1
grep -qx 'link_error=9' "$T/ch17.out" || { cat "$T/ch17.out"; fail "the 17th channel was not refused with 9"; }
expect_log "refused display:0 channel: session $SID already has 16 channels"
say "the 17th channel of a session refused with 9"

# 6. a VM that is not running: known only after the login, so SASL succeeds
# and the link result is 9
spice_raw "$PORT_B" login alice 'alice-good-pw' >"$T/down.out" 2>&1 || true
grep -qx 'sasl_result=0' "$T/down.out" && grep -qx 'link_result=9' "$T/down.out" ||
    { cat "$T/down.out"; fail "VM not running: expected sasl_result=0, link_result=9"; }
expect_log "vm b: SPICE console not available \(connect unix:"
spice_raw "$PORT_B" login alice 'wrong-pw' >"$T/down-bad.out" 2>&1 || true
grep -qx 'sasl_result=7' "$T/down-bad.out" ||
    { cat "$T/down-bad.out"; fail "VM not running, wrong password: expected sasl_result=7"; }
say "VM not running: 9 after the login, 7 for a wrong password (nothing told before the login)"

vmgate_alive || fail "the gateway died"
true
