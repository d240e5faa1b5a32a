#!/bin/bash
# t90-serial-ssh: the serial console as people use it, and its bad input.
#   TigerVNC's -via recipe from the README (VNC_VIA_CMD='ssh -f -L
#   %L:socket_dir/b.vnc %G sleep 20' vncviewer -via USER@host localhost)
#   through the private sshd shows VM b's screen, logged in by uid.
#   socket_dir/c.spice (SPICE, no ticket, by uid): a raw link's result is 0
#   for the allowed user, 7 (permission denied) for the other;
#   spicy-screenshot on the socket and through ssh -L PORT:c.spice (the
#   remote-viewer recipe) shows QEMU's screen, the other user gets nothing.
#   Under tmux (a real terminal), through a private sshd:
#   `ssh -t host vmgate console --serial a` as the allowed throwaway user
#   shows vmgate's greeting and the banner the guest printed before anyone
#   attached; typed text comes back once (raw mode: no local echo, the guest's
#   echo only); tmux send-keys C-] detaches with "[vmgate console: detached
#   from VM a]" and exit status 0.  The user outside the ACL gets
#   "vmgate console: user NAME may not open VM a" and exit 1.
#   Locally under tmux: after Ctrl-], and after a SIGTERM to the console, the
#   shell's terminal is back in cooked mode (stty: icanon echo).  Clear
#   lines: a VM without serial, a serial socket that is not there (exit 1).
#   Bad input on NAME.serial: garbage and silence from a refused user get the
#   refusal line (after fail_delay, before login_timeout); 200 connections
#   from one refused uid are capped per uid (most closed at once) while the
#   allowed user still attaches; 40 attaches of the allowed user: 16 sessions
#   (the per-VM cap), the rest get "too many sessions"; a client that never
#   reads while the guest prints 512 KiB (on '!') loses its backlog for a
#   "[vmgate: N bytes dropped" marker, and the other session gets every byte.
. "$(dirname "$0")/lib.sh"
. "$TOOLS/spice_lib.sh"
need_vmgate
need_root "throwaway users and sshd"

make_certs
make_passwd nobody-here 'unused'
make_user ALLOWED
make_user DENIED
start_serial_qemu a
start_qemu b unix
start_qemu_spice c -device qxl
SPORT=$(free_port)
write_config "$T/a.conf" fail_delay=1s login_timeout=6s -- \
    vm a vnc="${QEMU_BACKEND[a]}" serial="${SERIAL_BACKEND[a]}" users="$ALLOWED" \
    vm b vnc="${QEMU_BACKEND[b]}" users="$ALLOWED" \
    vm c spice="unix:$T/c.spice" spice_port="$SPORT" qmp="$T/c.qmp" users="$ALLOWED"
chmod 644 "$T/a.conf"
start_vmgate "$T/a.conf" 3
SOCK=$T/run/a.serial
expect_log "vm=a serial: connected to QEMU's serial port"
qmp_cmd a cont >/dev/null
mkdir -p "$T/bin"
cp "$VMGATE" "$T/bin/vmgate"
chmod 755 "$T/bin" "$T/bin/vmgate"
VG=$T/bin/vmgate

# --- through ssh -t, under tmux
start_sshd "$ALLOWED" "$DENIED"
for u in "$ALLOWED" "$DENIED"; do
    cat >"$T/ssh-$u.sh" <<SH
#!/bin/sh
ssh -t -F /dev/null -i $T/ssh/id.$u -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p $SSHD_PORT $u@127.0.0.1 \
    $VG console -c $T/a.conf --serial a
echo "EXIT=\$?"
sleep 60
SH
    chmod 755 "$T/ssh-$u.sh"
done
tmx new-session -d -s ok -x 150 -y 40 "$T/ssh-$ALLOWED.sh"
tmx_expect ok "\[vmgate: serial console of VM a, $ALLOWED has the keyboard\]"
tmx_expect ok "$SERIAL_BANNER"
say "ssh -t: greeting and the replayed banner on the terminal"
tmx send-keys -t ok -l "typed-over-ssh-7"
tmx_expect ok "typed-over-ssh-7"
sleep 1
n=$(tmx_screen ok | grep -o "typed-over-ssh-7" | wc -l)
[ "$n" = 1 ] || { tmx_screen ok; fail "typed text shown $n times (expected once: raw mode, the guest's echo)"; }
tmx send-keys -t ok C-]
tmx_expect ok "\[vmgate console: detached from VM a\]"
tmx_expect ok "^EXIT=0"
say "typed text echoed once by the guest; Ctrl-] detached, exit 0"
expect_log "user=$ALLOWED from=uid:$(id -u "$ALLOWED") via=unix: session ended"

tmx new-session -d -s no -x 150 -y 40 "$T/ssh-$DENIED.sh"
tmx_expect no "vmgate console: user $DENIED may not open VM a"
tmx_expect no "^EXIT=1"
say "ssh -t as $DENIED: $(tmx_screen no | grep 'vmgate console:')"

# --- the README's TigerVNC -via recipe: vncviewer runs VNC_VIA_CMD itself
# (ssh -f -L %L:socket_dir/b.vnc %G sleep 20) and connects to %L
start_xvfb via
VV_LOG[via]=$T/vv.via.log
add_log "${VV_LOG[via]}"
mkdir -p "$T/home.vv.via"
HOME=$T/home.vv.via DISPLAY=${XV_DISPLAY[via]} \
    VNC_VIA_CMD="/usr/bin/ssh -F /dev/null -i $T/ssh/id.$ALLOWED -o BatchMode=yes \
-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p $SSHD_PORT \
-f -L %L:$T/run/b.vnc %G sleep 20" \
    vncviewer -SecurityTypes None -ReconnectOnError=0 -AlertOnFatalError=0 -Shared \
    -Log '*:stderr:30' -via "$ALLOWED@127.0.0.1" localhost >"${VV_LOG[via]}" 2>&1 </dev/null &
VV_PID[via]=$!
track "${VV_PID[via]}"
expect_viewer_connected via
expect_viewer_shows via b 40
stop_viewer via
expect_log "vm=b user=$ALLOWED from=uid:$(id -u "$ALLOWED") via=unix: session started"
say "vncviewer -via with VNC_VIA_CMD through sshd: VM b's screen, as $ALLOWED by uid"

# --- socket_dir/c.spice: a SPICE link with no ticket, authorized by uid
if command -v spicy-screenshot >/dev/null; then
    expect_log "listening for vm c \(spice\) on unix:$T/run/c.spice"
    wait_guest_stable c
    CASE="spice link"
    serialc runuser -u "$ALLOWED" -- "$PY" "$TOOLS/serialc.py" spicelink "$T/run/c.spice"
    sc_has '^result=0$'
    serialc runuser -u "$DENIED" -- "$PY" "$TOOLS/serialc.py" spicelink "$T/run/c.spice"
    sc_has '^result=7$'
    expect_log "vm=c from=uid:$(id -u "$DENIED") via=unix: login failed for user \"$DENIED\""
    say "c.spice: $ALLOWED's link result 0, $DENIED's 7 (permission denied)"
    # spicy-screenshot on the socket, and through ssh -L PORT:c.spice (the
    # remote-viewer recipe), shows QEMU's screen
    mkdir -p "$T/shots"
    chmod 777 "$T/shots"
    rc=0; timeout -k 5 30 runuser -u "$ALLOWED" -- spicy-screenshot \
        --uri "spice+unix://$T/run/c.spice" -o "$T/shots/loc.ppm" >"$T/shot.loc.log" 2>&1 || rc=$?
    add_log "$T/shot.loc.log"
    [ "$rc" = 0 ] || fail "spicy-screenshot on c.spice as $ALLOWED: status $rc"
    LP=$(free_port)
    ssh_as "$ALLOWED" -N -L "127.0.0.1:$LP:$T/run/c.spice" >"$T/ssh.spice.log" 2>&1 </dev/null &
    track $!
    wait_for 15 port_listening 127.0.0.1 "$LP" || fail "ssh -L to c.spice did not come up"
    rc=0; timeout -k 5 30 spicy-screenshot --uri "spice://127.0.0.1?port=$LP" \
        -o "$T/shots/ssh.ppm" >"$T/shot.ssh.log" 2>&1 || rc=$?
    add_log "$T/shot.ssh.log"
    [ "$rc" = 0 ] || fail "spicy-screenshot through ssh -L to c.spice: status $rc"
    screendump c "$T/ref.c.png"
    for f in loc ssh; do
        "$PY" -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2])' \
            "$T/shots/$f.ppm" "$T/shots/$f.png"
        "$PY" "$TOOLS/imgcmp.py" compare "$T/shots/$f.png" "$T/ref.c.png" >"$T/cmp.$f" ||
            { cat "$T/cmp.$f"; fail "SPICE screenshot ($f) differs from QEMU's screendump"; }
    done
    rc=0; timeout -k 5 30 runuser -u "$DENIED" -- spicy-screenshot \
        --uri "spice+unix://$T/run/c.spice" -o "$T/shots/no.ppm" >"$T/shot.no.log" 2>&1 || rc=$?
    [ "$rc" != 0 ] && [ ! -s "$T/shots/no.ppm" ] || fail "spicy-screenshot as $DENIED got a screen"
    expect_log "vm=c user=$ALLOWED from=uid:$(id -u "$ALLOWED") via=unix: session started \(spice"
    say "c.spice: spicy-screenshot on the socket and through ssh -L shows QEMU's screen; $DENIED refused"
else
    say "spicy-screenshot not installed: NAME.spice screenshots skipped"
fi

# --- locally: the terminal is restored (after Ctrl-], after SIGTERM)
tmx new-session -d -s loc -x 150 -y 40 "runuser -u $ALLOWED -- bash --norc -i"
sleep 0.5
tmx send-keys -t loc "$VG console -c $T/a.conf --serial a; echo LOCAL-EXIT=\$?" Enter
tmx_expect loc "has the keyboard"
tmx send-keys -t loc C-]
tmx_expect loc "^LOCAL-EXIT=0"
tmx send-keys -t loc "stty -a | tr ' ' '\n' | grep -x -e icanon -e echo | tr '\n' ' '; echo STTY-DONE" Enter
tmx_expect loc "^icanon echo STTY-DONE"
tmx send-keys -t loc "clear; $VG console -c $T/a.conf --serial a; echo LOCAL-EXIT=\$?" Enter
tmx_expect loc "has the keyboard"
pkill -TERM -u "$ALLOWED" -x vmgate
tmx_expect loc "^LOCAL-EXIT=1"
tmx send-keys -t loc "stty -a | tr ' ' '\n' | grep -x -e icanon -e echo | tr '\n' ' '; echo STTY2-DONE" Enter
tmx_expect loc "^icanon echo STTY2-DONE"
say "the terminal is cooked again after Ctrl-] and after SIGTERM"

# --- clear lines
rc=0; "$VG" console -c "$T/a.conf" --serial b </dev/null >"$T/nb" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "VM b has no serial console" "$T/nb" || { cat "$T/nb"; fail "VM without serial: status $rc"; }
mkdir -p "$T/empty"
rc=0; "$VG" console --socket-dir "$T/empty" --serial a </dev/null >"$T/nr" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "the serial console of VM a is not running" "$T/nr" ||
    { cat "$T/nr"; fail "no serial socket: status $rc"; }
say "$(cat "$T/nr")"

# --- bad input
CASE=garbage
serialc runuser -u "$DENIED" -- "$PY" "$TOOLS/serialc.py" run "$SOCK" \
    "send:$(printf '\x01\x02GARBAGE\xff\xfe')" drain:4
sc_has "^out='vmgate: user $DENIED may not open VM a\\\\r\\\\n'$"; sc_has '^closed=yes'
CASE=silent
serialc runuser -u "$DENIED" -- "$PY" "$TOOLS/serialc.py" run "$SOCK" drain:8
sc_has "^out='vmgate: user $DENIED may not open VM a\\\\r\\\\n'$"; sc_has '^closed=yes'
"$PY" -c "import sys; sys.exit(0 if 0.8 <= float('$(sc_val elapsed)') < 6 else 1)" ||
    fail "silent refused client closed after $(sc_val elapsed)s (fail_delay 1s, login_timeout 6s)"
say "garbage and silence from $DENIED: the refusal line, closed after $(sc_val elapsed)s"
stop_vmgate

CASE=flood
write_config "$T/f.conf" fail_delay=4s login_timeout=6s max_unauth_per_source=8 -- \
    vm a vnc="${QEMU_BACKEND[a]}" serial="${SERIAL_BACKEND[a]}" users="$ALLOWED"
start_vmgate "$T/f.conf" 1
expect_log "vm=a serial: connected to QEMU's serial port"
runuser -u "$DENIED" -- "$PY" "$TOOLS/serialc.py" flood "$SOCK" 200 3 >"$T/flood.out" 2>&1 &
FPID=$!
track $FPID
add_log "$T/flood.out"
sleep 1
serialc runuser -u "$ALLOWED" -- "$PY" "$TOOLS/serialc.py" run "$SOCK" "wait:has the keyboard" \
    send:during-flood mark wait:during-flood
sc_hasnt '^timeout='
wait $FPID || true
SC=$T/flood.out
capped=$(sc_val capped); silent=$(sc_val silent)
[ "$capped" -ge 180 ] || { cat "$SC"; fail "200 connections of one uid: only $capped capped"; }
[ "$((200 - capped))" -le 8 ] || { cat "$SC"; fail "more than 8 of one uid held a slot"; }
expect_log "refused connection from uid:$(id -u "$DENIED") via=unix: too many unauthenticated connections"
say "200 from $DENIED: $capped closed at once, the rest wait for their refusal; $ALLOWED got in meanwhile"
CASE="session cap"
serialc runuser -u "$ALLOWED" -- "$PY" "$TOOLS/serialc.py" flood "$SOCK" 40 2 seq
sc_has '^attached=16$'; sc_has '^refused=24$'
sc_has "^reason=vmgate: too many sessions \(16\) on the serial console of VM a$"
say "40 attaches of $ALLOWED: 16 sessions, 24 told 'too many sessions'"
stop_vmgate

CASE="slow reader"
write_config "$T/s.conf" -- \
    vm a vnc="${QEMU_BACKEND[a]}" serial="${SERIAL_BACKEND[a]}" users="$ALLOWED"
start_vmgate "$T/s.conf" 1
expect_log "vm=a serial: connected to QEMU's serial port"
runuser -u "$ALLOWED" -- "$PY" "$TOOLS/serialc.py" slow "$SOCK" "$T/slow.go" >"$T/slow.out" 2>&1 &
SPID=$!
track $SPID
wait_for 10 grep -q connected=yes "$T/slow.out" || fail "slow client did not connect"
sleep 0.5
serialc runuser -u "$ALLOWED" -- "$PY" "$TOOLS/serialc.py" burst "$SOCK"
sc_has '^complete=yes'
expect_log "vm=a serial: conn=[0-9]+: [0-9]+ bytes dropped for a terminal that reads too slowly"
say "fast session: $(sc_val got) bytes of burst in $(sc_val elapsed)s; the slow one lost its backlog"
touch "$T/slow.go"
wait_for 10 _not_alive "$SPID" || fail "slow client did not finish"
SC=$T/slow.out
sc_has '^marker=yes'
say "slow session, reading at last: $(sc_val mark)"
vmgate_alive || fail "vmgate died"
stop_vmgate
