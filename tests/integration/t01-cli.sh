#!/bin/bash
# t01-cli: the admin commands without a VM.
#  - vmgate --help names the subcommands
#  - certs init: ECDSA P-256 CA + server cert with the requested SANs, keys 0600,
#    server cert verifies against the CA, no overwrite without --force; ca.key
#    in tls/ca/ (0700), the CA name-constrained (a forged cert is refused);
#    certs show prints openssl's SHA-256 fingerprint
#  - passwd: yescrypt hashes from stdin, no clear text in the file, re-set replaces
#  - check: a good config exits 0 and names the VMs; bad configs exit 1 with FILE:LINE;
#    a CA key beside the server key and a missing [firewall] are warned of; a
#    passwd_file writable by group/others or (as root) not owned by root is
#    refused by check and run, naming the file
#  - run: a missing cert or a port in use exits non-zero with a message, quickly
. "$(dirname "$0")/lib.sh"
need_vmgate

# --help
"$VMGATE" --help >"$T/help.txt" 2>&1 || fail "vmgate --help exited non-zero"
for w in run check certs passwd; do
    grep -qw "$w" "$T/help.txt" || { cat "$T/help.txt"; fail "vmgate --help does not mention '$w'"; }
done

# certs init
make_certs
for f in ca.crt ca/ca.key server.crt server.key; do
    [ -s "$T/tls/$f" ] || fail "certs init did not write $f"
done
for f in ca/ca.key server.key; do
    m=$(stat -c %a "$T/tls/$f")
    [ "$m" = 600 ] || fail "$f has mode $m, expected 600"
done
[ ! -e "$T/tls/ca.key" ] || fail "certs init put ca.key beside server.key"
[ "$(stat -c %a "$T/tls/ca")" = 700 ] || fail "the CA key directory is not mode 0700"
# the CA is name-constrained: a certificate it signs for another name fails
openssl x509 -in "$T/tls/ca.crt" -noout -ext nameConstraints 2>/dev/null | grep -q 'critical' ||
    fail "ca.crt has no critical nameConstraints"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/evil.key" \
    -subj /CN=evil.example -addext subjectAltName=DNS:evil.example -out "$T/evil.csr" 2>/dev/null &&
    openssl x509 -req -in "$T/evil.csr" -CA "$T/tls/ca.crt" -CAkey "$T/tls/ca/ca.key" \
        -CAcreateserial -days 1 -copy_extensions copyall -out "$T/evil.crt" 2>/dev/null ||
    fail "cannot sign a test certificate with the CA key"
if openssl verify -CAfile "$T/tls/ca.crt" "$T/evil.crt" >"$T/o.txt" 2>&1; then
    fail "a certificate for evil.example signed by the vmgate CA verifies"
fi
grep -q 'permitted subtree violation' "$T/o.txt" || { cat "$T/o.txt"; fail "evil.crt refused for another reason"; }
# certs show: the fingerprint viewers show, as openssl computes it
"$VMGATE" certs show --dir "$T/tls" >"$T/show.txt" 2>&1 || { cat "$T/show.txt"; fail "certs show failed"; }
fp=$(openssl x509 -in "$T/tls/server.crt" -noout -fingerprint -sha256 | sed 's/^.*=//')
grep -qx "SHA-256 fingerprint: $fp" "$T/show.txt" || { cat "$T/show.txt"; fail "certs show fingerprint != openssl's $fp"; }
openssl verify -CAfile "$T/tls/ca.crt" "$T/tls/server.crt" >/dev/null 2>&1 ||
    fail "server.crt does not verify against ca.crt"
san=$(openssl x509 -in "$T/tls/server.crt" -noout -ext subjectAltName 2>/dev/null)
for want in "DNS:localhost" "IP Address:127.0.0.1" "IP Address:0:0:0:0:0:0:0:1"; do
    case $san in *"$want"*) ;; *) fail "server.crt SAN lacks $want: $san" ;; esac
done
openssl x509 -in "$T/tls/server.crt" -noout -text | grep -Eq 'prime256v1|P-256' ||
    fail "server.crt is not ECDSA P-256"
openssl pkey -in "$T/tls/server.key" -pubout >"$T/k.pub" 2>/dev/null &&
    openssl x509 -in "$T/tls/server.crt" -noout -pubkey >"$T/c.pub" &&
    cmp -s "$T/k.pub" "$T/c.pub" || fail "server.key does not belong to server.crt"
sum1=$(cat "$T"/tls/*.* "$T"/tls/ca/* | sha256sum)
if "$VMGATE" certs init --dir "$T/tls" --name localhost >"$T/o.txt" 2>&1; then
    fail "certs init overwrote existing files without --force"
fi
[ "$(cat "$T"/tls/*.* "$T"/tls/ca/* | sha256sum)" = "$sum1" ] || fail "certs init without --force changed the files"
"$VMGATE" certs init --dir "$T/tls" --name localhost,127.0.0.1 --force >"$T/o.txt" 2>&1 ||
    { cat "$T/o.txt"; fail "certs init --force failed"; }
[ "$(cat "$T"/tls/*.* "$T"/tls/ca/* | sha256sum)" != "$sum1" ] || fail "certs init --force did not replace the files"
say "certs init ok"

# passwd
make_passwd alice 'first pass word'
make_passwd bob 'bob-secret'
grep -q '^alice:\$y\$' "$T/passwd" || { cat "$T/passwd"; fail "alice's entry is not a yescrypt hash"; }
grep -q '^bob:\$y\$' "$T/passwd" || { cat "$T/passwd"; fail "bob's entry is not a yescrypt hash"; }
h1=$(grep '^alice:' "$T/passwd")
make_passwd alice 'second pass word'
[ "$(grep -c '^alice:' "$T/passwd")" -eq 1 ] || fail "re-setting alice added a second line"
[ "$(grep '^alice:' "$T/passwd")" != "$h1" ] || fail "re-setting alice did not change the hash"
grep -q -e 'pass word' -e 'bob-secret' "$T/passwd" && fail "a clear-text password is in the file"
say "passwd ok"

# check: good config
write_config "$T/good.conf" -- \
    vm one vnc=unix:/run/nonexistent/one.vnc vnc_port=5990 users=alice \
    vm two vnc=127.0.0.1:5905 vnc_port=5991 users="alice bob"
"$VMGATE" check -c "$T/good.conf" >"$T/check.txt" 2>&1 || { cat "$T/check.txt"; fail "check rejected a good config"; }
grep -q one "$T/check.txt" && grep -q two "$T/check.txt" ||
    { cat "$T/check.txt"; fail "check output does not name both VMs"; }
# a VM without qmp: one warning line (its monitor may sit on a virtual console), still exit 0
grep -q "good.conf:[0-9]*: warning: vm one has no qmp socket" "$T/check.txt" ||
    { cat "$T/check.txt"; fail "check did not warn about a VM without qmp"; }
write_config "$T/qmp.conf" -- vm one vnc=qmp:/run/nonexistent/one.qmp vnc_port=5990 users=alice
"$VMGATE" check -c "$T/qmp.conf" >"$T/check2.txt" 2>&1 || { cat "$T/check2.txt"; fail "check rejected a good config"; }
grep -q "no qmp socket" "$T/check2.txt" && { cat "$T/check2.txt"; fail "check warned about a VM with qmp"; }

grep -q 'CA private key' "$T/check.txt" && { cat "$T/check.txt"; fail "check warns of a CA key that is not there"; }
# check: a CA key beside the server key (the old layout) -> a loud warning
cp "$T/tls/ca/ca.key" "$T/tls/ca.key"
"$VMGATE" check -c "$T/good.conf" >"$T/check2.txt" 2>&1 || { cat "$T/check2.txt"; fail "check failed with ca.key beside"; }
grep -q "WARNING: a CA private key $T/tls/ca.key lies beside the server key" "$T/check2.txt" ||
    { cat "$T/check2.txt"; fail "check does not warn of $T/tls/ca.key"; }
rm -f "$T/tls/ca.key"

# check: no [firewall] -> a warning (no kernel bans); with one -> none
grep -q "good.conf: warning: no \[firewall\] section" "$T/check.txt" ||
    { cat "$T/check.txt"; fail "check does not warn of the missing [firewall]"; }
cp "$T/good.conf" "$T/fw.conf"
printf '\n[firewall]\nprotect = 5900-6100\n' >>"$T/fw.conf"
"$VMGATE" check -c "$T/fw.conf" >"$T/check3.txt" 2>&1 || { cat "$T/check3.txt"; fail "check rejected a config with [firewall]"; }
grep -q 'no \[firewall\]' "$T/check3.txt" && { cat "$T/check3.txt"; fail "check warns of a missing [firewall] that is there"; }

# passwd_file others could rewrite: refused by check and run, naming the file
passwd_refused() {   # WHAT EXPECTED-TEXT
    local rc=0
    "$VMGATE" check -c "$T/good.conf" >"$T/pw.out" 2>&1 || rc=$?
    [ "$rc" -eq 1 ] || { cat "$T/pw.out"; fail "check with passwd_file $1: exit $rc, expected 1"; }
    grep -q "error: passwd_file $T/passwd $2" "$T/pw.out" || { cat "$T/pw.out"; fail "check with passwd_file $1: no 'passwd_file $T/passwd $2'"; }
    rc=0
    timeout 10 "$VMGATE" run -c "$T/good.conf" >"$T/pw.out" 2>&1 || rc=$?
    [ "$rc" -eq 1 ] || { cat "$T/pw.out"; fail "run with passwd_file $1: exit $rc, expected 1"; }
    grep -q "error: passwd_file $T/passwd $2" "$T/pw.out" || { cat "$T/pw.out"; fail "run with passwd_file $1: no message naming the file"; }
    say "passwd_file $1: refused"
}
chmod 664 "$T/passwd"; passwd_refused "mode 664" "is writable by its group"
chmod 602 "$T/passwd"; passwd_refused "mode 602" "is writable by others"
chmod 600 "$T/passwd"
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    chown nobody "$T/passwd"; passwd_refused "owned by nobody" "is owned by uid $(id -u nobody), not root"
    chown root "$T/passwd"
fi
chmod 640 "$T/passwd"
"$VMGATE" check -c "$T/good.conf" >"$T/pw.out" 2>&1 || { cat "$T/pw.out"; fail "check refused a 0640 root-owned passwd_file"; }
chmod 600 "$T/passwd"

# check: bad configs -> exit 1 and FILE:LINE
bad_config() {   # NAME EXPECTED_LINE : config text on stdin
    local f=$T/$1.conf out rc=0
    cat >"$f"
    "$VMGATE" check -c "$f" >"$T/$1.out" 2>&1 || rc=$?
    [ "$rc" -eq 1 ] || { cat "$T/$1.out"; fail "check on $1 exited $rc, expected 1"; }
    grep -q "$f:$2:" "$T/$1.out" || { cat "$T/$1.out"; fail "check on $1: no '$f:$2:' in the error"; }
    say "check $1: $(head -n 1 "$T/$1.out")"
}
bad_config unknown-key 3 <<EOF
[gateway]
auth = file
colour = blue
EOF
bad_config unknown-section 2 <<EOF
[gateway]
[vm-typo x]
EOF
bad_config duplicate-key 3 <<EOF
[gateway]
address = 127.0.0.1
address = 127.0.0.1
EOF
bad_config bad-duration 2 <<EOF
[gateway]
login_timeout = 5 fortnights
EOF
bad_config port-twice 7 <<EOF
[gateway]
[vm a]
vnc = unix:/tmp/a.vnc
vnc_port = 5990
[vm b]
vnc = unix:/tmp/b.vnc
vnc_port = 5990
EOF
bad_config bad-backend 3 <<EOF
[gateway]
[vm a]
vnc = carrier-pigeon:/tmp/a
vnc_port = 5990
EOF
bad_config firewall-allow-loopback 4 <<EOF
[gateway]
[firewall]
protect = 5900-6100
allow = 192.0.2.0/24 127.0.0.0/8
EOF

# run: missing cert -> non-zero exit with a message
PORT=$(free_port)
write_config "$T/nocert.conf" cert="$T/nonexistent.crt" -- vm a vnc=unix:$T/a.vnc vnc_port="$PORT" users=alice
rc=0
timeout 10 "$VMGATE" run -c "$T/nocert.conf" >"$T/nocert.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { cat "$T/nocert.out"; fail "run with a missing cert: exit $rc"; }
grep -q 'nonexistent.crt' "$T/nocert.out" || { cat "$T/nocert.out"; fail "run with a missing cert: message does not name the file"; }
say "missing cert: $(head -n 1 "$T/nocert.out")"

# run: port in use -> non-zero exit with a message
"$PY" -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("ok", flush=True); time.sleep(60)' "$PORT" >"$T/holder.out" 2>&1 &
track $!
wait_for 5 grep -q ok "$T/holder.out" || fail "could not occupy port $PORT"
write_config "$T/busy.conf" -- vm a vnc=unix:$T/a.vnc vnc_port="$PORT" users=alice
rc=0
timeout 10 "$VMGATE" run -c "$T/busy.conf" >"$T/busy.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { cat "$T/busy.out"; fail "run with its port in use: exit $rc"; }
grep -Eqi "$PORT|in use" "$T/busy.out" || { cat "$T/busy.out"; fail "run with its port in use: message names neither port nor 'in use'"; }
say "port in use: $(head -n 1 "$T/busy.out")"
