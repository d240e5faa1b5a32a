#!/bin/bash
# t11-gvnccapture: gtk-vnc's gvnccapture logs in through vmgate (VeNCrypt
# X509Plain, strict certificate check against our CA, username + password typed
# on a pty) and saves the same screen QEMU's screendump shows.  A wrong password
# makes it fail, and vmgate logs why.
# gtk-vnc takes the CA from ~/.pki/CA/cacert.pem with ~ from the passwd entry,
# so this runs gvnccapture as a throwaway user (root needed; else skipped).
. "$(dirname "$0")/lib.sh"
need_vmgate
need_root "gvnccapture reads its CA from the passwd home of the user it runs as; the test creates a throwaway user"

make_certs
make_passwd alice 'gtk alice'
start_qemu a qmp
PORT=$(free_vnc_port)
write_config "$T/vmgate.conf" -- vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users=alice
start_vmgate "$T/vmgate.conf"
wait_guest_stable a

rc=0
run_gvnccapture alice 'gtk alice' "$PORT" "$T/cap.png" >"$T/gv.out" 2>&1 || rc=$?
add_log "$T/gv.out"
[ "$rc" -eq 0 ] || fail "gvnccapture exited $rc"
grep -q 'Saved display to' "$T/gv.out" || fail "gvnccapture did not save the display"
[ -s "$T/cap.png" ] || fail "no capture file"
screendump a "$T/ref.png"
res=$("$PY" "$TOOLS/imgcmp.py" compare "$T/cap.png" "$T/ref.png") ||
    fail "gvnccapture's image differs from QEMU's screendump: $res"
"$PY" "$TOOLS/imgcmp.py" notblank "$T/cap.png" >/dev/null || fail "gvnccapture's image is blank"
say "gvnccapture image matches the screendump: $res"
expect_log "vm=a user=alice from=[^ ]+: session started \(backend qmp:"

rc=0
run_gvnccapture alice 'not the password' "$PORT" "$T/cap2.png" >"$T/gv2.out" 2>&1 || rc=$?
add_log "$T/gv2.out"
[ "$rc" -ne 0 ] || fail "gvnccapture with a wrong password exited 0"
[ ! -s "$T/cap2.png" ] || fail "gvnccapture with a wrong password saved an image"
expect_log "vm=a from=[^ ]+: login failed for user \"alice\": bad password"
say "wrong password: gvnccapture exit $rc: $(grep -v '^Password' "$T/gv2.out" | tail -n 1)"
