#!/bin/bash
# t75-reload: live config reload (SIGHUP and `vmgate reload`) with real QEMU
# and VNC sessions.  vmgate starts as root with user = nobody and a config
# that only root may read (0600), so every reload goes through the auth
# helper: it re-reads, binds the new ports and sends them down (the network
# process may neither read the file nor bind).  For processes = 1 and 2:
#  - a session on VM a is open (holdrfb.py: a full 32x32 update every 0.2 s)
#    and keeps relaying across every reload below (its rx keeps growing);
#  - `vmgate reload` adding VM b: exit 0, "1 vm(s) added"; b's port and its
#    socket_dir socket serve logins (several, so both network processes are hit);
#  - ACL change (a: users alice -> bob) by `vmgate reload`: alice's next login
#    on a is refused, bob's is accepted; alice's open session on a goes on
#    (an open session keeps the policy it started with);
#  - a broken config (bad line N): `vmgate reload` exits 1 naming FILE:N, the
#    log says "keeping the old configuration: FILE:N", the audit has
#    reload/failed; nothing changed (b still serves);
#  - `vmgate status --json` lists all 6 sessions of bob on a (with
#    processes = 2 they are spread over both network processes: network
#    process 1 asks the other, gateway/peers.c) and `vmgate kick --user bob`
#    ends all 6;
#  - SIGHUP removing VM b with a session open on b: the session ends (closed),
#    the log and audit name the reason "vm b was removed from the configuration",
#    b's port refuses connections and its socket_dir socket is gone; the audit
#    has reload/ok.
# Fails without the reload (before this branch SIGHUP reloaded only the
# certificate: b never listens).
. "$(dirname "$0")/lib.sh"
need_root "the reload's privilege split only happens when vmgate starts as root"
need_vmgate
id nobody >/dev/null 2>&1 || skip "no user 'nobody' on this machine"

make_certs
make_passwd alice 'alice pw'
make_passwd bob 'bob pw'
chmod 600 "$T/passwd"
start_qemu a tcp
start_qemu b tcp

login() {   # PORT USER PASS -> prints result=...
    local out
    out=$("$PY" "$TOOLS/rawrfb.py" --timeout 10 login 127.0.0.1 "$1" "$CA" "$2" "$3" 2>&1) || true
    grep -m1 '^result=' <<<"$out" || echo result=none
}
rx_of() { sed -n 's/^rx=//p' "$1" | tail -n 1; }
expect_relaying() {   # OUTFILE WHY: rx grows within 3 s
    local r0
    r0=$(rx_of "$1"); r0=${r0:-0}
    wait_for 3 eval "[ \"\$(rx_of '$1')\" -gt $r0 ] 2>/dev/null" ||
        fail "$2: the session stopped relaying (rx stays $r0; $(tail -n 2 "$1" | tr '\n' ' '))"
    grep -q '^closed=yes' "$1" && fail "$2: the session was closed"
    return 0
}
reload_cmd() {   # -> sets RL_OUT, RL_RC
    RL_RC=0
    RL_OUT=$("$VMGATE" reload --socket "$T/control" 2>&1) || RL_RC=$?
}

run_case() {   # PROCESSES
    local procs=$1 pa pb conf base good r i hold_a hold_b
    pa=$(free_port); pb=$(free_port)
    conf=$T/vmgate.$procs.conf
    base=(user=nobody processes="$procs" audit="$T/audit.$procs.jsonl" socket_dir="$T/run$procs"
          control="$T/control")
    write_config "$conf" "${base[@]}" -- vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$pa" users=alice
    chmod 600 "$conf"
    start_vmgate "$conf"
    expect_log "network-facing process runs as nobody"
    [ "$procs" -gt 1 ] && expect_log "net2: [a-z]+: network process 2/2 ready"
    runuser -u nobody -- cat "$conf" >/dev/null 2>&1 && fail "nobody can read the config"

    hold_a=$T/hold_a.$procs
    "$PY" "$TOOLS/holdrfb.py" 127.0.0.1 "$pa" "$CA" alice 'alice pw' >"$hold_a" 2>&1 &
    track $!
    wait_for 10 grep -q '^rx=' "$hold_a" || fail "processes=$procs: no session on a ($(cat "$hold_a"))"
    expect_relaying "$hold_a" "processes=$procs, before any reload"
    port_listening 127.0.0.1 "$pb" && fail "processes=$procs: b's port listens before b exists"

    # 1. add b by `vmgate reload`
    write_config "$conf" "${base[@]}" -- vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$pa" users=alice \
        vm b vnc="${QEMU_BACKEND[b]}" vnc_port="$pb" users=alice
    reload_cmd
    [ "$RL_RC" -eq 0 ] || fail "processes=$procs: vmgate reload (add b) exit $RL_RC: $RL_OUT"
    grep -q '1 vm(s) added, 0 removed, 0 changed' <<<"$RL_OUT" || fail "processes=$procs: reload said: $RL_OUT"
    for i in 1 2 3 4; do
        r=$(login "$pb" alice 'alice pw')
        [ "$r" = result=ok ] || fail "processes=$procs: login $i on the new vm b: $r"
    done
    [ -S "$T/run$procs/b.vnc" ] || fail "processes=$procs: no socket_dir socket for b"
    expect_relaying "$hold_a" "processes=$procs, after adding b"
    say "processes=$procs: b added, a's session still relays"

    # 2. ACL change on a: alice out, bob in
    write_config "$conf" "${base[@]}" -- vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$pa" users=bob \
        vm b vnc="${QEMU_BACKEND[b]}" vnc_port="$pb" users=alice
    reload_cmd
    [ "$RL_RC" -eq 0 ] || fail "processes=$procs: vmgate reload (acl) exit $RL_RC: $RL_OUT"
    grep -q '0 vm(s) added, 0 removed, 1 changed' <<<"$RL_OUT" || fail "processes=$procs: reload said: $RL_OUT"
    for i in 1 2; do
        r=$(login "$pa" alice 'alice pw')
        [ "$r" = result=failed ] || fail "processes=$procs: alice's login on a after the ACL change: $r"
        r=$(login "$pa" bob 'bob pw')
        [ "$r" = result=ok ] || fail "processes=$procs: bob's login on a after the ACL change: $r"
    done
    expect_relaying "$hold_a" "processes=$procs, after the ACL change (open sessions keep their policy)"
    say "processes=$procs: ACL change applies to the next login; the open session goes on"
    good=$(cat "$conf")

    # 3. a broken line: nothing changes, FILE:LINE in the answer and the log
    printf 'this is not a key\n' >>"$conf"
    local bad_line
    bad_line=$(wc -l <"$conf")
    reload_cmd
    [ "$RL_RC" -eq 1 ] || fail "processes=$procs: vmgate reload of a broken config: exit $RL_RC ($RL_OUT)"
    grep -q "$conf:$bad_line:" <<<"$RL_OUT" || fail "processes=$procs: the error does not name $conf:$bad_line: $RL_OUT"
    wait_for 5 log_has "keeping the old configuration: $conf:$bad_line:" ||
        fail "processes=$procs: no 'keeping the old configuration: $conf:$bad_line:' in the log"
    wait_for 5 grep -q '"event":"reload".*"result":"failed"' "$T/audit.$procs.jsonl" ||
        fail "processes=$procs: no reload/failed audit event"
    r=$(login "$pb" alice 'alice pw')
    [ "$r" = result=ok ] || fail "processes=$procs: b stopped serving after a failed reload: $r"
    r=$(login "$pa" bob 'bob pw')
    [ "$r" = result=ok ] || fail "processes=$procs: a's ACL changed after a failed reload: $r"
    expect_relaying "$hold_a" "processes=$procs, after a failed reload"
    say "processes=$procs: broken config refused with $conf:$bad_line"

    # 4. remove b (SIGHUP) with a session open on b
    hold_b=$T/hold_b.$procs
    "$PY" "$TOOLS/holdrfb.py" 127.0.0.1 "$pb" "$CA" alice 'alice pw' >"$hold_b" 2>&1 &
    track $!
    wait_for 10 grep -q '^rx=' "$hold_b" || fail "processes=$procs: no session on b ($(cat "$hold_b"))"
    printf '%s\n' "$good" | sed '/^\[vm b\]/,$d' >"$conf"
    kill -HUP "$VMGATE_PID"
    wait_for 10 grep -q '^closed=yes' "$hold_b" || fail "processes=$procs: b's session did not end after b was removed"
    wait_for 5 log_has "kicked by reload: vm b was removed from the configuration" ||
        fail "processes=$procs: no kick line with the reason in the log"
    wait_for 5 grep -q '"event":"kick".*"vm":"b".*"reason":"vm b was removed from the configuration"\|"event":"kick".*"reason":"vm b was removed' "$T/audit.$procs.jsonl" ||
        fail "processes=$procs: no kick audit event with the reason"
    wait_for 5 eval "! port_listening 127.0.0.1 $pb 2>/dev/null" || fail "processes=$procs: b's port still accepts connections"
    [ -e "$T/run$procs/b.vnc" ] && fail "processes=$procs: b's socket_dir socket is still there"
    grep -q '"event":"reload".*"result":"ok"' "$T/audit.$procs.jsonl" || fail "processes=$procs: no reload/ok audit event"
    expect_relaying "$hold_a" "processes=$procs, after removing b"
    r=$(login "$pa" bob 'bob pw')
    [ "$r" = result=ok ] || fail "processes=$procs: a after removing b: $r"
    # status and kick see every network process's sessions
    local holds=() j nb
    for j in 1 2 3 4 5 6; do   # one after the other: the per-source cap is split too
        "$PY" "$TOOLS/holdrfb.py" 127.0.0.1 "$pa" "$CA" bob 'bob pw' >"$T/hold_bob$j.$procs" 2>&1 &
        track $!
        holds+=("$T/hold_bob$j.$procs")
        wait_for 10 grep -q '^rx=' "$T/hold_bob$j.$procs" ||
            fail "processes=$procs: bob's session $j did not start: $(tail -n 3 "$T/hold_bob$j.$procs")"
    done
    "$VMGATE" status --json --socket "$T/control" >"$T/status.$procs" 2>&1 || fail "status: $(cat "$T/status.$procs")"
    nb=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "complete" not in d, d; print(sum(1 for s in d["sessions"] if s["user"]=="bob"), [v["sessions"] for v in d["vms"] if v["name"]=="a"][0])' "$T/status.$procs") ||
        fail "processes=$procs: status --json: $(cat "$T/status.$procs")"
    [ "$nb" = "6 7" ] || fail "processes=$procs: status lists $nb (bob's sessions, a's count), expected 6 7: $(cat "$T/status.$procs")"
    [ "$procs" -gt 1 ] && say "processes=$procs: bob's sessions by process: net1 $(grep -c 'net1: .*user=bob .*session started' "$VMGATE_LOG") net2 $(grep -c 'net2: .*user=bob .*session started' "$VMGATE_LOG")"
    r=$("$VMGATE" kick --user bob --reason test --socket "$T/control" 2>&1) || fail "processes=$procs: kick --user bob: $r"
    [ "$r" = "kicked 6 session(s)" ] || fail "processes=$procs: kick said: $r"
    for j in "${holds[@]}"; do wait_for 5 grep -q '^closed=yes' "$j" || fail "processes=$procs: a kicked session of bob goes on ($j)"; done
    expect_relaying "$hold_a" "processes=$procs, after kicking bob"
    say "processes=$procs: status listed and kick ended all 6 sessions of bob"
    log_has 'Bad system call|SIGSYS|killed by signal' && fail "processes=$procs: a network process died: $(grep -E 'Bad system|killed by' "$VMGATE_LOG")"
    say "processes=$procs: b removed: its session ended with the reason, its port closed"
    stop_vmgate
}

run_case 1
run_case 2
echo "PASS"
