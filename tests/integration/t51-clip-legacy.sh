#!/bin/bash
# t51-clip-legacy: a viewer that knows only legacy cut text (libvncclient,
# like gtk-vnc and Remmina: tests/tools/clip_lvc) behind vmgate, in front of
# an Extended Clipboard server (Xvnc, 127.0.0.1:PORT backend).  vmgate
# translates both ways:
#   - VM -> viewer: Xvnc's UTF-8 clipboard arrives as ServerCutText in
#     Latin-1; characters outside Latin-1 become '?', one per character;
#   - viewer -> VM: the viewer's Latin-1 ClientCutText reaches Xvnc's X
#     clipboard as the same text in UTF-8;
#   - audit lines carry the UTF-8 byte count and SHA-256 (what the VM sent
#     or got), result=allowed; never the text;
#   - the session stays up (a full refresh still comes back), a second
#     round works, and an Extended Clipboard viewer (TigerVNC) on the same
#     VM at the same time still gets UTF-8 intact.
. "$(dirname "$0")/lib.sh"
need_vmgate
need_clip_tools
build_clip_lvc

make_certs
make_passwd alice 'legacy pw 51'
start_xvnc x tcp
PORT=$(free_port)
write_config "$T/vmgate.conf" -- \
    vm x vnc="${XVNC_BACKEND[x]}" vnc_port="$PORT" users=alice
start_vmgate "$T/vmgate.conf"
XD=${XVNC_DISPLAY[x]}

sha() { sha256sum <"$1" | cut -d' ' -f1; }
bytes() { wc -c <"$1" | tr -d ' '; }
# latin1 UTF8-FILE: the hex of the text in Latin-1, '?' for what is outside it
latin1() { "$PY" -c 'import sys; sys.stdout.write(open(sys.argv[1], encoding="utf-8").read().encode("latin-1", "replace").hex())' "$1"; }
# to_latin1 UTF8-FILE: the hex of the text in Latin-1 (all of it must fit)
to_latin1() { "$PY" -c 'import sys; sys.stdout.write(open(sys.argv[1], encoding="utf-8").read().encode("latin-1").hex())' "$1"; }

expect_audit() {   # DIR FILE
    expect_log "vm=x user=alice from=[^ ]+: clipboard dir=$1 bytes=$(bytes "$2") type=utf8-text sha256=$(sha "$2") result=allowed\$"
}

lvc_start l alice 'legacy pw 51' "$PORT"
lvc_expect l '^connected 320x240 bpp=32$' 20
expect_log "vm=x user=alice from=[^ ]+: session started \(backend ${XVNC_BACKEND[x]}\)"
lvc_alive l

round() {   # N
    local n=$1 s=$T/server.$1.txt v=$T/viewer.$1.txt want
    # VM -> legacy viewer
    printf 'héllo ☃ мир — café ±½ %s (round %s)' "$RANDOM" "$n" >"$s"
    want=$(latin1 "$s")
    xclip_set "$XD" "$s"
    lvc_expect l "^cuttext len=$((${#want} / 2)) hex=$want\$"
    say "round $n: VM -> legacy viewer: $(bytes "$s") UTF-8 bytes arrived as $((${#want} / 2)) Latin-1 bytes"
    expect_audit from-vm "$s"
    # legacy viewer -> VM
    printf 'Grüße aus libvncclient, ça va? ±½ÿ %s (round %s)' "$RANDOM" "$n" >"$v"
    lvc_cmd l send "$(to_latin1 "$v")"
    lvc_expect l "^sent len=$(($(to_latin1 "$v" | wc -c) / 2))\$"
    expect_clip "$XD" "$v" 10 "round $n: legacy viewer -> VM (UTF-8 on the VM)"
    expect_audit to-vm "$v"
    lvc_alive l
}
round 1
round 2

# the rule for characters outside Latin-1, spelled out once
grep -q "hex=$(printf 'héllo ? ??? ' | "$PY" -c 'import sys; sys.stdout.write(sys.stdin.buffer.read().decode().encode("latin-1").hex())')" "${LVC_OUT[l]}" ||
    fail "'héllo ☃ мир' did not arrive as 'héllo ? ???'"

# an Extended Clipboard viewer on the same VM meanwhile keeps UTF-8 intact
vncviewer_start t alice 'legacy pw 51' "$PORT"
expect_viewer_connected t
"$PY" "$TOOLS/clip_focus.py" "${XV_DISPLAY[t]}" TigerVNC >/dev/null || fail "could not focus viewer t"
s=$T/server.3.txt
printf 'for both viewers: ☃ мир é %s' "$RANDOM" >"$s"
xclip_set "$XD" "$s"
expect_clip "${XV_DISPLAY[t]}" "$s" 10 "VM -> TigerVNC viewer next to the legacy one"
want=$(latin1 "$s")
lvc_expect l "^cuttext len=$((${#want} / 2)) hex=$want\$"
say "and the legacy viewer got it in Latin-1"
[ "$(count_clip_audit "dir=from-vm bytes=$(bytes "$s") type=utf8-text sha256=$(sha "$s") result=allowed")" -eq 2 ] ||
    fail "expected one audit line per viewer for the third text"

# never the text in the log
for w in 'héllo' 'мир' 'Grüße' 'libvncclient' 'for both viewers' 'café'; do
    grep -qF -- "$w" "$VMGATE_LOG" && fail "clipboard text fragment '$w' in vmgate's log"
done
log_has 'cannot follow|session ended' && fail "a session ended: $(grep -E 'cannot follow|session ended' "$VMGATE_LOG")"
lvc_alive l
viewer_alive t || fail "viewer t exited"
lvc_stop l
stop_viewer t
wait_for 10 eval '[ "$(grep -c "session ended" "$VMGATE_LOG")" -eq 2 ]' || fail "expected 2 'session ended' lines"
