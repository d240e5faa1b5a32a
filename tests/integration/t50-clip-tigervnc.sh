#!/bin/bash
# t50-clip-tigervnc: copy and paste both ways through vmgate between a VNC
# backend with a real X clipboard (TigerVNC's Xvnc, unix: backend, no auth)
# and a real Extended Clipboard viewer (TigerVNC vncviewer under Xvfb).
#   - VM -> viewer: xclip sets Xvnc's CLIPBOARD; the viewer's Xvfb CLIPBOARD
#     then holds the same UTF-8 bytes (non-Latin text: é, ☃, Cyrillic);
#   - viewer -> VM: xclip sets the viewer's CLIPBOARD (the viewer window has
#     keyboard focus: tests/tools/clip_focus.py); Xvnc's CLIPBOARD gets it;
#   - one audit line per transfer: dir, bytes, the SHA-256 of exactly the
#     text, result=allowed; the text itself is never in the log;
#   - a second round in each direction works too, the session stays up.
. "$(dirname "$0")/lib.sh"
need_vmgate
need_clip_tools

make_certs
make_passwd alice 'clip pw 50'
start_xvnc x unix
PORT=$(free_port)
write_config "$T/vmgate.conf" -- \
    vm x vnc="${XVNC_BACKEND[x]}" vnc_port="$PORT" users=alice clipboard=both
start_vmgate "$T/vmgate.conf"
XD=${XVNC_DISPLAY[x]}

vncviewer_start v alice 'clip pw 50' "$PORT" -Log "$VV_CLIP_LOG"
expect_viewer_connected v
VD=${XV_DISPLAY[v]}
"$PY" "$TOOLS/clip_focus.py" "$VD" TigerVNC >"$T/focus.out" 2>&1 ||
    { cat "$T/focus.out"; fail "could not give the viewer window keyboard focus"; }
say "viewer window $(cat "$T/focus.out") has keyboard focus"

sha() { sha256sum <"$1" | cut -d' ' -f1; }
bytes() { wc -c <"$1" | tr -d ' '; }

# expect_audit DIR FILE: an audit line for exactly FILE's text, allowed (one
# per transfer: Xvnc may ask for the same clipboard twice, so the totals are
# checked against the viewer's own log at the end)
expect_audit() {
    expect_log "vm=x user=alice from=[^ ]+: clipboard dir=$1 bytes=$(bytes "$2") type=utf8-text sha256=$(sha "$2") result=allowed\$"
}
cnt() { grep -c -- "$1" "$2" || true; }
# round N: VM -> viewer, then viewer -> VM
round() {
    local n=$1 s=$T/server.$1.txt v=$T/viewer.$1.txt
    printf 'héllo ☃ мир %s from the VM (round %s)' "$RANDOM" "$n" >"$s"
    printf 'viewer → VM: привет, Grüße ✓ %s (round %s)' "$RANDOM" "$n" >"$v"

    xclip_set "$XD" "$s"
    expect_clip "$VD" "$s" 10 "round $n: VM -> viewer"
    expect_audit from-vm "$s"

    xclip_set "$VD" "$v"
    expect_clip "$XD" "$v" 10 "round $n: viewer -> VM"
    expect_audit to-vm "$v"
    # reading it again on either side is served from what was transferred
    xclip_is "$VD" "$v" || fail "round $n: the viewer's own clipboard changed"
}
round 1
round 2

# the viewer used Extended Clipboard, and every transfer has its audit line:
# as many from-vm lines as the viewer got data, to-vm lines as it sent
viewer_log_has v 'Got server clipboard capabilities' || fail "no Extended Clipboard caps reached the viewer"
counts_match() {
    [ "$(count_clip_audit 'dir=from-vm .*result=allowed')" -eq "$(cnt 'Got clipboard data' "${VV_LOG[v]}")" ] &&
        [ "$(count_clip_audit 'dir=to-vm .*result=allowed')" -eq "$(cnt 'Sending clipboard data' "${VV_LOG[v]}")" ]
}
wait_for 5 counts_match || { grep ': clipboard' "$VMGATE_LOG"; grep -E 'clipboard data' "${VV_LOG[v]}"; fail "audit lines do not match the viewer's transfers"; }
[ "$(count_clip_audit 'dir=')" -eq "$(count_clip_audit 'dir=.*result=allowed')" ] || fail "a transfer was not allowed"
say "one audit line per transfer: $(cnt 'Got clipboard data' "${VV_LOG[v]}") received, $(cnt 'Sending clipboard data' "${VV_LOG[v]}") sent by the viewer"

# the texts never appear in vmgate's log, in whole or in part
for f in "$T"/server.*.txt "$T"/viewer.*.txt; do
    grep -qF -- "$(cat "$f")" "$VMGATE_LOG" && fail "clipboard text in vmgate's log: $(cat "$f")"
done
for w in 'héllo' '☃' 'мир' 'привет' 'Grüße' 'from the VM' 'viewer →'; do
    grep -qF -- "$w" "$VMGATE_LOG" && fail "clipboard text fragment '$w' in vmgate's log"
done

# the session is still up: viewer running, no error in its log, no session end
viewer_alive v || fail "viewer exited"
viewer_log_has v "$VV_FAIL" && fail "viewer logged an error: $(grep -E -- "$VV_FAIL" "${VV_LOG[v]}" | tail -n 1)"
log_has 'session ended|cannot follow' && fail "the session ended or lost sync: $(grep -E 'session ended|cannot follow' "$VMGATE_LOG")"
say "session still up after 4 transfers; $(count_clip_audit 'dir=') audit lines"
stop_viewer v
expect_log "vm=x user=alice from=[^ ]+: session ended"
