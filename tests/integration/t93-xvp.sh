#!/bin/bash
# t93-xvp: XVP power buttons answered by vmgate (issue 14 part 1).  Real
# QEMU with two QMP monitors: vmgate uses one (vnc = qmp:, qmp =), the
# test watches events on the other.  A raw RFB client through vmgate's
# TLS port (tests/tools/xvp.py):
#   - a power user announcing -309 gets XVP_INIT; shutdown -> POWERDOWN
#     event, reset -> RESET event, reboot without qga -> XVP_FAIL and no
#     event; with a (fake) guest agent, reboot -> guest-shutdown mode reboot;
#   - a user without power rights: no XVP_INIT, XVP_FAIL, no event, and the
#     session still relays (a framebuffer update after);
#   - bad input: wrong version, unknown code, XVP before XVP_INIT: XVP_FAIL,
#     no action; a flood of 60 resets: one action, the flood logged once;
#     a 250 without -309 closes that session with the reason;
#   - every action and refusal: one log line and a `power` audit event;
#   - a real viewer: noVNC (browser console, headless Chromium) shows its
#     power button for the power user only, and its Reset button resets;
#     vmgate's own page (web_dir) shows Shutdown / Reboot / Reset for the power
#     user only, and its Reset resets.
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'alice pw 93'
make_passwd bob 'bob pw 93'
start_qemu dev0 qmp
EVENTS=$T/events.jsonl
"$PY" "$TOOLS/xvp.py" events "${QEMU_CTL[dev0]}" "$EVENTS" &
track $!
wait_for 10 grep -q watching "$EVENTS" 2>/dev/null || fail "QMP event watcher did not start"
QGA_LOG=$T/qga.jsonl
"$PY" "$TOOLS/xvp.py" fakeqga "$T/dev1.qga" "$QGA_LOG" &
track $!
wait_for 10 test -S "$T/dev1.qga" || fail "fake guest agent did not start"

P0=$(free_port)
P1=$(free_port)
AUDIT=$T/audit.jsonl
WP=$(free_port)
# (Chromium loads noVNC's files over more than 8 connections at once)
write_config "$T/vmgate.conf" audit="$AUDIT" web_port="$WP" web_dir="$ROOT/web" \
    max_unauth_per_source=32 -- \
    vm dev0 vnc="${QEMU_BACKEND[dev0]}" vnc_port="$P0" users="alice bob" power_users=alice \
    vm dev1 vnc="${QEMU_BACKEND[dev0]}" vnc_port="$P1" users=alice power_users=alice \
        qga="unix:$T/dev1.qga"
start_vmgate "$T/vmgate.conf"

session() {   # NAME PORT USER PASS STEP...: run xvp.py, output in $T/s.NAME
    local name=$1 port=$2 user=$3 pass=$4
    shift 4
    "$PY" "$TOOLS/xvp.py" session 127.0.0.1 "$port" "$CA" "$user" "$pass" "$@" \
        >"$T/s.$name" 2>&1 || { cat "$T/s.$name"; fail "xvp.py session $name failed"; }
    say "session $name: $(grep -E '^(init|fail|fbu|inits|fails|updates|closed|closed_now)=' "$T/s.$name" | tr '\n' ' ')"
}
val() { sed -n "s/^$2=//p" "$T/s.$1" | tail -n 1; }       # NAME KEY
vals() { sed -n "s/^$2=//p" "$T/s.$1" | tr '\n' ' ' | sed 's/ $//'; }
# QMP events of a kind; RESET only the ones QMP caused (SeaBIOS without a
# boot disk resets the guest on its own now and then: "guest": true)
events() {
    if [ "$1" = RESET ]; then grep '"event": "RESET"' "$EVENTS" | grep -c host-qmp-system-reset || true
    else grep -c "\"event\": \"$1\"" "$EVENTS" || true; fi
}
audits() { grep '"event":"power"' "$AUDIT" | grep -c "\"action\":\"$1\",\"result\":\"$2\"" || true; }

checklist
# 1. a power user
session alice "$P0" alice 'alice pw 93' enc:309 init:5 xvp:1:2 sleep:2.2 xvp:1:4 sleep:2.2 \
    xvp:1:3 fail:5 fbu
check "power user: XVP_INIT" yes "$(val alice init)"
check "power user: one XVP_INIT" 1 "$(val alice inits)"
wait_for 5 test "$(events POWERDOWN)" -ge 1 || true
check "shutdown -> POWERDOWN event" 1 "$(events POWERDOWN)"
check "reset -> RESET event" 1 "$(events RESET)"
check "reboot without qga -> XVP_FAIL" yes "$(val alice fail)"
check "power user: only the reboot failed" 1 "$(val alice fails)"
check "power user: session relays after" yes "$(val alice fbu)"
expect_log 'power shutdown: ok'
expect_log 'power reset: ok'
expect_log 'power reboot: failed: vm dev0 has no qga configured'
check "audit: shutdown ok" 1 "$(audits shutdown ok)"
check "audit: reset ok" 1 "$(audits reset ok)"
check "audit: reboot failed" 1 "$(audits reboot failed)"

# 2. a user without power rights
session bob "$P0" bob 'bob pw 93' enc:309 wait:1.5 xvp:1:4 fail:5 fbu
check "no right: no XVP_INIT" 0 "$(val bob inits)"
check "no right: XVP_FAIL" yes "$(val bob fail)"
check "no right: session relays after" yes "$(val bob fbu)"
check "no right: session not closed" no "$(val bob closed)"
sleep 0.5
check "no right: no RESET event" 1 "$(events RESET)"
expect_log 'user "?bob"?.*power reset: refused: no power right|power reset: refused: no power right'
check "audit: reset refused" 1 "$(audits reset refused)"

# 3. bad input from a power user: each XVP_FAIL, no action, session stays
session bad "$P0" alice 'alice pw 93' enc:309 init:5 xvp:2:4 fail:5 sleep:2.2 xvp:1:9 fail:5 \
    sleep:2.2 flood:60:4 wait:3 fbu
check "wrong version: XVP_FAIL" yes "$(vals bad fail | cut -d' ' -f1)"
check "unknown code: XVP_FAIL" yes "$(vals bad fail | cut -d' ' -f2)"
check "bad input: session relays after" yes "$(val bad fbu)"
check "flood: exactly one more RESET" 2 "$(events RESET)"
FLOOD_LINES=$(grep -c 'power reset: rate-limited' "$VMGATE_LOG" || true)
check "flood: logged once" 1 "$FLOOD_LINES"
F=$(val bad fails)
[ "$F" -ge 3 ] && [ "$F" -le 62 ] && ok "flood: XVP_FAILs coalesced ($F for 62 bad messages)" ||
    bad "flood: $F XVP_FAILs"
expect_log 'power reset: refused: xvp version 2'
expect_log 'power xvp: refused: unknown xvp code 9'

# XVP before XVP_INIT: in the same write as the SetEncodings
session early "$P0" alice 'alice pw 93' raw:0200000200000000fffffecbfa000104 fail:5 init:3 fbu
check "before INIT: XVP_FAIL" yes "$(val early fail)"
check "before INIT: the INIT still comes" yes "$(val early init)"
check "before INIT: session relays" yes "$(val early fbu)"
sleep 0.5
check "before INIT: no RESET event" 2 "$(events RESET)"
expect_log 'power reset: refused: xvp message before XVP_INIT'

# a 250 from a viewer that never announced -309: a protocol error
session noenc "$P0" alice 'alice pw 93' enc:none wait:0.5 xvp:1:4 closed:5
check "250 without -309: session closed" yes "$(val noenc closed_now)"
expect_log 'xvp message without the xvp pseudo-encoding'
check "250 without -309: no RESET event" 2 "$(events RESET)"

# 4. reboot through the guest agent (dev1: qga configured, a fake agent)
session qga "$P1" alice 'alice pw 93' enc:309 init:5 xvp:1:3 wait:2 fbu
check "qga: XVP_INIT" yes "$(val qga init)"
check "qga: no XVP_FAIL" 0 "$(val qga fails)"
wait_for 5 grep -q guest-shutdown "$QGA_LOG" || true
check "qga: guest-shutdown mode reboot sent" 1 \
    "$(grep -c '"execute": "guest-shutdown", "arguments": {"mode": "reboot"}' "$QGA_LOG" || true)"
expect_log 'power reboot: ok'

# 5. a real viewer: noVNC 1.3 (Debian's) on the browser console in headless
# Chromium shows its power button only for the power user, and its Reset
# button resets the VM
novnc_skip=
command -v chromium >/dev/null || novnc_skip="chromium is not installed"
command -v certutil >/dev/null || novnc_skip="certutil (libnss3-tools) is not installed"
[ -f /usr/share/novnc/vnc.html ] || novnc_skip="novnc is not installed"
"$PY" -c 'import websocket' 2>/dev/null || novnc_skip="python3-websocket is not installed"
if [ -n "$novnc_skip" ]; then
    say "noVNC part skipped: $novnc_skip"
else
    export HOME=$T/home
    mkdir -p "$HOME/.pki/nssdb"
    certutil -d "sql:$HOME/.pki/nssdb" -N --empty-password || fail "certutil -N"
    certutil -d "sql:$HOME/.pki/nssdb" -A -t C,, -n vmgate -i "$CA" || fail "certutil -A"
    DP=$(free_port)
    add_log "$T/chromium.log"
    chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --user-data-dir="$T/profile" \
        --remote-debugging-address=127.0.0.1 --remote-debugging-port="$DP" about:blank \
        >"$T/chromium.log" 2>&1 </dev/null &
    track $!
    wait_for 30 port_listening 127.0.0.1 "$DP" || fail "chromium's DevTools port did not open"
    URL="https://127.0.0.1:$WP/vnc.html?host=127.0.0.1&port=$WP&path=vnc/dev0&encrypt=1&autoconnect=1"
    before=$(events RESET)
    out=$("$PY" "$TOOLS/cdp.py" "$DP" novnc-power "$URL" alice 'alice pw 93' reset 2>&1)
    say "noVNC as alice: $(echo $out)"
    check "noVNC: power button for the power user" "power yes" "$(echo "$out" | head -n 1)"
    wait_for 5 test "$(events RESET)" -gt "$before" || true
    check "noVNC: Reset button -> RESET event" $((before + 1)) "$(events RESET)"
    out=$("$PY" "$TOOLS/cdp.py" "$DP" novnc-power "$URL&x=2" bob 'bob pw 93' reset 2>&1)
    say "noVNC as bob: $(echo $out)"
    check "noVNC: no power button without the right" "power no" "$(echo "$out" | head -n 1)"
    expect_log 'via=web user=alice .*power reset: ok'

    # 6. vmgate's own page (web_dir, GET /): its Shutdown / Reboot / Reset
    # buttons show for the power user only, and its Reset resets the VM
    before=$(events RESET)
    out=$(cd "$TOOLS" && "$PY" vmgate_page.py power "$DP" "https://127.0.0.1:$WP" alice \
        'alice pw 93' dev0 reset "$T/page-power.png" 2>&1)
    say "vmgate's page as alice: $(echo $out)"
    check "page: power buttons for the power user" "power yes" "$(echo "$out" | grep '^power ')"
    check "page: the three buttons" "buttons Shutdown Reboot Reset" "$(echo "$out" | grep '^buttons' | sed 's/ *$//')"
    wait_for 5 test "$(events RESET)" -gt "$before" || true
    check "page: Reset button -> RESET event" $((before + 1)) "$(events RESET)"
    check "page: console still connected after the reset" "console connected" \
        "$(echo "$out" | grep '^console ')"
    [ -n "${VMGATE_SHOTS:-}" ] && cp "$T/page-power.png" "$VMGATE_SHOTS/web-power.png"
    out=$(cd "$TOOLS" && "$PY" vmgate_page.py power "$DP" "https://127.0.0.1:$WP" bob \
        'bob pw 93' dev0 reset "$T/page-power-bob.png" 2>&1)
    say "vmgate's page as bob: $(echo $out)"
    check "page: no power buttons without the right" "power no" "$(echo "$out" | grep '^power ')"
    check "page: no button visible without the right" "buttons" "$(echo "$out" | grep '^buttons' | sed 's/ *$//')"
    sleep 0.5
    check "page: no RESET event from bob" $((before + 1)) "$(events RESET)"
fi

# the helper forgot the ended sessions and QEMU never saw -309 or a 250
vmgate_alive || fail "vmgate died"
grep -q 'xvp client message while disabled' "$T/qemu.dev0.log" && bad "QEMU got an XVP message"
checks_done
