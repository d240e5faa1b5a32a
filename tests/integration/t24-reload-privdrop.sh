#!/bin/bash
# t24-reload-privdrop: SIGHUP reloads a root-owned 0600 key after the
# privilege drop.  vmgate starts as root with user = nobody; the network
# process (nobody) cannot read the key, so the auth helper (root) reads the
# certificate and key and sends them down.  Proves, for processes = 1 and
# processes = 2:
#  - the certificate and key are replaced by a new set (new CA), still 0600
#    root, and nobody cannot read the new key;
#  - after SIGHUP a new TLS connection (after the VeNCrypt preamble) presents
#    the new certificate (SHA-256 fingerprint = `vmgate certs show`), and a
#    login verifies against the new CA;
#  - with processes = 2 a network process started after the reload (a
#    replacement, forked by the supervisor) serves the new certificate too;
#  - no "keeping the old certificate" error is logged.
# Before the fix the reload failed with "server.key: Permission denied" and
# the old certificate stayed.
. "$(dirname "$0")/lib.sh"
need_root "the privilege drop only happens when vmgate starts as root"
need_vmgate
id nobody >/dev/null 2>&1 || skip "no user 'nobody' on this machine"

make_certs
make_passwd alice 'reload pw'
chmod 600 "$T/passwd"
start_qemu d tcp   # nobody must reach the backend: loopback TCP

served_fp() {   # PORT: the fingerprint of the certificate served on PORT
    local out
    out=$("$PY" "$TOOLS/rawrfb.py" --timeout 10 certfp 127.0.0.1 "$1" 2>&1) || true
    sed -n 's/^fp=//p' <<<"$out" | grep . || fail "rawrfb certfp on port $1: $(tr '\n' ' ' <<<"$out")"
}
file_fp() { openssl x509 -in "$T/tls/server.crt" -noout -fingerprint -sha256 | sed 's/^.*=//'; }
login_ok() {    # PORT CA WHY
    local out
    out=$("$PY" "$TOOLS/rawrfb.py" --timeout 10 login 127.0.0.1 "$1" "$2" alice 'reload pw' 2>&1) || true
    grep -qx 'result=ok' <<<"$out" || fail "login ($3): $(tr '\n' ' ' <<<"$out")"
}

run_case() {    # PROCESSES
    local procs=$1 port old_fp new_fp fp n k pid
    port=$(free_port)
    "$VMGATE" certs init --dir "$T/tls" --name localhost,127.0.0.1,::1 --force >"$T/certs.$procs.log" 2>&1 ||
        { cat "$T/certs.$procs.log"; fail "certs init failed"; }
    write_config "$T/vmgate.$procs.conf" user=nobody processes="$procs" -- \
        vm d vnc="${QEMU_BACKEND[d]}" vnc_port="$port" users=alice
    start_vmgate "$T/vmgate.$procs.conf"
    expect_log "network-facing process runs as nobody"
    if [ "$procs" -gt 1 ]; then
        expect_log "net2: [a-z]+: network process 2/2 ready"
    fi
    old_fp=$(file_fp)
    [ "$(served_fp "$port")" = "$old_fp" ] || fail "processes=$procs: the served certificate is not server.crt"
    login_ok "$port" "$T/tls/ca.crt" "processes=$procs, first certificate"

    # rotate: a new CA, certificate and key; the key stays 0600 root
    cp "$T/tls/ca.crt" "$T/old-ca.crt"
    "$VMGATE" certs init --dir "$T/tls" --name localhost,127.0.0.1,::1 --force >"$T/certs2.$procs.log" 2>&1 ||
        { cat "$T/certs2.$procs.log"; fail "certs init --force failed"; }
    [ "$(stat -c %a:%U "$T/tls/server.key")" = 600:root ] || fail "server.key is not 0600 root"
    runuser -u nobody -- cat "$T/tls/server.key" >/dev/null 2>&1 && fail "nobody can read the new server.key"
    new_fp=$(file_fp)
    [ "$new_fp" != "$old_fp" ] || fail "certs init --force did not change server.crt"
    "$VMGATE" certs show --dir "$T/tls" | grep -qx "SHA-256 fingerprint: $new_fp" ||
        fail "certs show does not print $new_fp"

    n=$(grep -c 'SIGHUP: reloaded certificate' "$VMGATE_LOG" || true)
    kill -HUP "$VMGATE_PID"
    wait_for 10 eval "[ \$(grep -c 'SIGHUP: reloaded certificate' '$VMGATE_LOG') -ge $((n + procs)) ]" ||
        { grep -E 'SIGHUP|certificate' "$VMGATE_LOG"; fail "processes=$procs: no 'SIGHUP: reloaded certificate' within 10 s"; }
    log_has 'keeping the old certificate' && fail "processes=$procs: $(grep 'keeping the old' "$VMGATE_LOG")"
    for k in 1 2 3 4; do   # with 2 processes, connections land on either
        fp=$(served_fp "$port")
        [ "$fp" = "$new_fp" ] || fail "processes=$procs: after SIGHUP the gateway serves $fp, not the new $new_fp"
    done
    login_ok "$port" "$T/tls/ca.crt" "processes=$procs, new CA after SIGHUP"
    say "processes=$procs: SIGHUP served the new certificate $new_fp"

    if [ "$procs" -gt 1 ]; then
        # a network process forked after the reload inherits the supervisor's new context
        pid=$(grep -E 'net1: [a-z]+: network process 1/2 ready' "$VMGATE_LOG" | tail -n 1 | sed -E 's/^vmgate\[([0-9]+)\].*/\1/')
        n=$(grep -c 'network process 1/2 ready' "$VMGATE_LOG")
        kill -KILL "$pid"
        wait_for 5 eval "[ \$(grep -c 'network process 1/2 ready' '$VMGATE_LOG') -gt $n ]" ||
            fail "no replacement for net1 within 5 s"
        pid=$(grep -E 'net2: [a-z]+: network process 2/2 ready' "$VMGATE_LOG" | tail -n 1 | sed -E 's/^vmgate\[([0-9]+)\].*/\1/')
        kill -STOP "$pid"      # every connection now goes to the replacement
        fp=$(served_fp "$port")
        kill -CONT "$pid"
        [ "$fp" = "$new_fp" ] || fail "the replacement network process serves $fp, not the new $new_fp"
        say "processes=2: the replacement serves the new certificate"
    fi
    stop_vmgate
}

run_case 1
run_case 2
