#!/bin/bash
# t83-audit: the audit trail (audit = FILE).  A TigerVNC session gives a
# login ok, session-open and (after the viewer quits) session-close with
# bytes both ways and its seconds; a failed login with a user name holding a
# newline, quotes, a backslash and a control byte gives one login failed
# line, that name escaped (the line count stays one per event), with the
# reason; a legacy cut text sent to the VM gives one clipboard event with
# its size and sha256; SIGHUP gives reload ok; after logrotate's move and
# SIGUSR1 the next events go to the new file (mode 0640); the same after a
# move and `vmgate reload` (its reload event and the next login land in a
# fresh file, nothing in the moved one).  Every line parses
# as JSON, starts with the common keys in order, and "time" is RFC 3339 UTC
# with milliseconds.  Started as root with user = nobody, the file and the
# directory vmgate creates belong to nobody (0640, 0750) and the
# unprivileged process reopens the file after a move (SIGUSR1, and
# `vmgate reload`).
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'alice pw 80'
start_qemu a unix
PORT=$(free_port)
AUDIT=$T/log/audit.jsonl
write_config "$T/vmgate.conf" audit="$AUDIT" -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users=alice
start_vmgate "$T/vmgate.conf"
[ -f "$AUDIT" ] || fail "vmgate did not create the audit file $AUDIT (and its directory)"
[ "$(stat -c %a "$AUDIT")" = 640 ] || fail "audit file mode is $(stat -c %a "$AUDIT"), expected 640"

# jq-like checks in python: audit_check FILE EXPR... prints the matching count
audit_count() {   # FILE PYEXPR: lines (parsed as e) for which PYEXPR is true
    "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    if eval(sys.argv[2], {}, {"e": e}):
        n += 1
print(n)
PYEOF
}
audit_has() { [ "$(audit_count "$1" "$2")" -ge "$3" ]; }   # FILE PYEXPR N
expect_audit() {  # FILE PYEXPR [WANT]: wait for WANT (default 1) such lines
    wait_for 10 audit_has "$1" "$2" "${3:-1}" ||
        { cat "$1"; fail "audit trail $1 has no line with: $2"; }
}

# a session
vncviewer_start v1 alice 'alice pw 80' "$PORT"
expect_viewer_connected v1
expect_audit "$AUDIT" 'e["event"] == "login" and e["result"] == "ok" and e["user"] == "alice" and e["vm"] == "a" and e["via"] == "tls" and e["source"] == "127.0.0.1" and e["reason"] is None'
expect_audit "$AUDIT" 'e["event"] == "session-open" and e["user"] == "alice" and e["conn"] > 0'
sleep 1
stop_viewer v1
expect_audit "$AUDIT" 'e["event"] == "session-close" and e["user"] == "alice" and e["bytes_from_vm"] > 1000 and e["bytes_to_vm"] > 10 and e["seconds"] >= 1 and isinstance(e["reason"], str)'

# a failed login with a user name built to break the line
EVIL=$'ev"il\nname\\x\x01}'
"$PY" "$TOOLS/rawrfb.py" login 127.0.0.1 "$PORT" "$CA" "$EVIL" wrong >"$T/evil.txt" 2>&1 || true
grep -qx 'result=failed' "$T/evil.txt" || { cat "$T/evil.txt"; fail "the evil login did not fail"; }
expect_audit "$AUDIT" 'e["event"] == "login" and e["result"] == "failed" and e["user"] == "ev\"il\nname\\x\x01}" and e["reason"] == "unknown user"'
grep -qF '"user":"ev\"il\nname\\x\u0001}"' "$AUDIT" || { cat "$AUDIT"; fail "the user name is not escaped as expected"; }

# a clipboard transfer to the VM (legacy cut text from libvncclient)
if pkg-config --exists libvncclient 2>/dev/null; then
    lvc_start l alice 'alice pw 80' "$PORT"
    lvc_expect l '^connected '
    lvc_cmd l send "$(printf 'audit me' | hexof)"
    lvc_expect l '^sent len=8'
    SHA=$(printf 'audit me' | sha256sum | cut -d' ' -f1)
    expect_audit "$AUDIT" "e['event'] == 'clipboard' and e['dir'] == 'to-vm' and e['bytes'] == 8 and e['sha256'] == '$SHA' and e['result'] == 'allowed' and e['user'] == 'alice'"
    lvc_stop l
else
    say "libvncclient not installed: clipboard audit not exercised here (t51/t52 cover the event)"
fi

# reload
kill -HUP "$VMGATE_PID"
expect_audit "$AUDIT" 'e["event"] == "reload" and e["result"] == "ok" and e["conn"] is None and e["user"] is None'

# logrotate: move, SIGUSR1, the next event lands in the new file
mv "$AUDIT" "$AUDIT.1"
kill -USR1 "$VMGATE_PID"
expect_log 'audit: reopened .* \(SIGUSR1\)'
vmgate_alive || fail "vmgate died on SIGUSR1"
"$PY" "$TOOLS/rawrfb.py" login 127.0.0.1 "$PORT" "$CA" alice wrong >/dev/null 2>&1 || true
expect_audit "$AUDIT" 'e["event"] == "login" and e["result"] == "failed" and e["reason"] == "bad password"'
[ "$(audit_count "$AUDIT.1" 'e.get("result") == "failed" and e["user"] == "alice"')" = 0 ] ||
    fail "an event after SIGUSR1 went to the rotated file"
[ "$(stat -c %a "$AUDIT")" = 640 ] || fail "reopened audit file mode is $(stat -c %a "$AUDIT")"

# logrotate by `vmgate reload` instead of SIGUSR1: move, reload; the reload
# event and the next login land in a fresh file, none in the moved one
mv "$AUDIT" "$AUDIT.2"
RL_OUT=$("$VMGATE" reload --socket "$T/control" 2>&1) || fail "vmgate reload failed: $RL_OUT"
[ -f "$AUDIT" ] || fail "vmgate reload did not reopen (create) $AUDIT after the move"
expect_log 'audit: reopened .* \(reload\)'
expect_audit "$AUDIT" 'e["event"] == "reload" and e["result"] == "ok"'
"$PY" "$TOOLS/rawrfb.py" login 127.0.0.1 "$PORT" "$CA" bob wrong >/dev/null 2>&1 || true
expect_audit "$AUDIT" 'e["event"] == "login" and e["result"] == "failed" and e["user"] == "bob"'
[ "$(audit_count "$AUDIT.2" 'e["event"] == "reload" or e["user"] == "bob"')" = 0 ] ||
    { cat "$AUDIT.2"; fail "an event after vmgate reload went to the moved file"; }
[ "$(stat -c %a "$AUDIT")" = 640 ] || fail "audit file reopened by reload has mode $(stat -c %a "$AUDIT")"
stop_vmgate
# the shutdown closes nothing here (no session), and the trail is whole

# every line: JSON, common keys first in order, RFC 3339 UTC milliseconds
cat "$AUDIT.1" "$AUDIT.2" "$AUDIT" >"$T/all.jsonl"
"$PY" - "$T/all.jsonl" <<'PYEOF' || fail "audit lines are not all well-formed"
import json, re, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
assert lines[-1] == b"", "no newline at the end"
for raw in lines[:-1]:
    e = json.loads(raw.decode("utf-8"))
    keys = list(e)
    assert keys[:7] == ["time", "event", "conn", "vm", "user", "source", "via"], keys
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]), e["time"]
print("%d lines ok" % (len(lines) - 1))
PYEOF
grep -q 'alice pw 80' "$T/all.jsonl" && fail "a password appears in the audit trail"
for ev in login session-open session-close reload; do
    grep -q "\"event\":\"$ev\"" "$T/all.jsonl" || fail "no $ev event"
done
say "audit: $(wc -l <"$T/all.jsonl") events"

# started as root with user = nobody: the file (and the directory vmgate
# creates) belong to nobody, mode 0640, and the unprivileged process reopens
# it after a move
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    A2=$T/log2/audit.jsonl
    write_config "$T/vmgate2.conf" audit="$A2" user=nobody -- \
        vm a vnc=127.0.0.1:1 vnc_port="$PORT" users=alice
    start_vmgate "$T/vmgate2.conf"
    expect_log "network-facing process runs as nobody"
    [ "$(stat -c %U:%a "$A2")" = nobody:640 ] || fail "audit file is $(stat -c %U:%a "$A2"), expected nobody:640"
    [ "$(stat -c %U:%a "$T/log2")" = nobody:750 ] || fail "audit dir is $(stat -c %U:%a "$T/log2")"
    mv "$A2" "$A2.1"
    kill -USR1 "$VMGATE_PID"
    expect_log 'audit: reopened .* \(SIGUSR1\)'
    "$PY" "$TOOLS/rawrfb.py" login 127.0.0.1 "$PORT" "$CA" alice wrong >/dev/null 2>&1 || true
    expect_audit "$A2" 'e["event"] == "login" and e["result"] == "failed"'
    [ "$(stat -c %U:%a "$A2")" = nobody:640 ] || fail "reopened file is $(stat -c %U:%a "$A2")"
    # the same by `vmgate reload` (the unprivileged process reopens it)
    mv "$A2" "$A2.2"
    RL_OUT=$("$VMGATE" reload --socket "$T/control" 2>&1) || fail "vmgate reload (user = nobody) failed: $RL_OUT"
    expect_audit "$A2" 'e["event"] == "reload" and e["result"] == "ok"'
    [ "$(stat -c %U:%a "$A2")" = nobody:640 ] || fail "file reopened by reload is $(stat -c %U:%a "$A2")"
    stop_vmgate
    say "user = nobody: audit file owned by nobody, reopened unprivileged (SIGUSR1 and reload)"
fi
