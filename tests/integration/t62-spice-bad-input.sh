#!/bin/bash
# t62-spice-bad-input: malformed SPICE links are each refused with the SPICE
# error code QEMU would send and one log line, and nothing else is touched:
# garbage magic (2), wrong major version (4), an over-size link message (3),
# capability counts that overflow (3), a SASL step longer than allowed,
# a SASL mechanism other than PLAIN and the SPICE ticket mechanism (7), a
# viewer without TLS, and a viewer that stalls mid-link (closed at
# login_timeout).  A good viewer gets in while a stalled one hangs, and after
# all of it.
. "$(dirname "$0")/lib.sh"
. "$TOOLS/spice_lib.sh"
spice_need_viewer
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"

make_certs
make_passwd alice 'alice-good-pw'
start_qemu_spice a
PORT=$(free_port)
write_config "$T/vmgate.conf" login_timeout=3s -- \
    vm a spice="unix:$T/a.spice" spice_port="$PORT" qmp="$T/a.qmp" users=alice
start_spice_gateway "$T/vmgate.conf"

expect_raw() {   # NAME KEY=VALUE LOG-ERE ARGS...
    local name=$1 kv=$2 ere=$3
    shift 3
    spice_raw "$PORT" "$@" >"$T/raw.$name" 2>&1 || true
    grep -qx -- "$kv" "$T/raw.$name" || { cat "$T/raw.$name"; fail "$name: expected $kv"; }
    expect_log "$ere"
    vmgate_alive || fail "the gateway died after $name"
}
expect_raw magic link_error=2 'bad SPICE link: not a SPICE link \(bad magic\)' magic
expect_raw major link_error=4 'bad SPICE link: SPICE protocol version 3, only 2 is supported' major 3
expect_raw size link_error=3 'bad SPICE link: link message size 100000 \(must be 18\.\.4096\)' size 100000
expect_raw caps link_error=3 'bad SPICE link: 1073741824 common and 3221225473 channel capability words' caps
expect_raw sasl-long sasl_result=7 'bad SASL exchange: SASL data of 100000 bytes \(max 2048\)' sasl-long 100000
expect_raw mech sasl_result=7 'bad SASL exchange: SASL mechanism "DIGESTMD5", only PLAIN is offered' mech DIGESTMD5
expect_raw ticket link_result=7 'viewer chose auth mechanism 1; vmgate offers only SASL' ticket
say "malformed links refused with the right codes"

# no TLS at all
"$PY" - "$PORT" <<'PYEOF' >"$T/notls.txt" 2>&1 || true
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(b"REDQ" + struct.pack("<III", 2, 2, 18) + b"\0" * 18)
s.settimeout(10)
try:
    print("got=%d" % len(s.recv(4096)))
except OSError as e:
    print("error=%s" % e)
PYEOF
expect_log 'TLS handshake failed'

# a stalled viewer is closed at login_timeout; meanwhile a good viewer gets in
spice_raw "$PORT" stall >"$T/raw.stall" 2>&1 &
stall=$!
track "$stall"
sleep 0.5
spice_shot alice 'alice-good-pw' "$PORT" "$T/shot.png" >"$T/shot.log" ||
    { cat "$T/shot.log"; fail "a good viewer could not get in while another one stalls"; }
# (whether the stall outlived the good viewer depends on the machine's load;
# that it was not closed early is what the elapsed time below shows)
wait "$stall" || true
el=$(sed -n 's/^elapsed=//p' "$T/raw.stall")
"$PY" -c "import sys; sys.exit(0 if 2.5 <= float('${el:-0}') <= 8 else 1)" ||
    { cat "$T/raw.stall"; fail "stalled link closed after ${el:-?}s, expected login_timeout=3s"; }
expect_log 'login timeout \(3s\) in state link'
say "stalled viewer closed after ${el}s; a good viewer got in meanwhile"

spice_shot alice 'alice-good-pw' "$PORT" "$T/shot2.png" >"$T/shot2.log" ||
    { cat "$T/shot2.log"; fail "a good viewer could not get in after the bad input"; }
"$PY" "$TOOLS/imgcmp.py" notblank "$T/shot2.png" >/dev/null || fail "blank screenshot after the bad input"
vmgate_alive || fail "the gateway died"
true
