#!/bin/bash
# t70-systemd-unit: dist/vmgate.service as systemd reads it.
#  - `systemd-analyze verify` is clean (ExecStart pointed at the binary under
#    test, MANPATH at docs/, so Documentation= man pages are checked too);
#  - `systemd-analyze security --offline=true` rates its exposure at most
#    3.0 (2.7 with systemd 252 when written): a hardening line lost fails here;
#  - the settings the daemon relies on are there: Type=notify with
#    NotifyAccess=main (t72 shows only the main PID notifies), reload by
#    SIGHUP to $MAINPID, ordering after nftables.service and the network.
# Skipped when systemd-analyze is missing.
. "$(dirname "$0")/lib.sh"
need_vmgate
need_tools "the unit check" systemd-analyze
UNIT=$ROOT/dist/vmgate.service

mkdir -p "$T/unit" "$T/man/man8" "$T/man/man5"
sed "s|/usr/bin/vmgate|$VMGATE|g" "$UNIT" >"$T/unit/vmgate.service"
cp "$ROOT/docs/vmgate.8" "$T/man/man8/"
cp "$ROOT/docs/vmgate.conf.5" "$T/man/man5/"
MAN=--man=yes
command -v man >/dev/null || { MAN=--man=no; say "no man(1) here: Documentation= not checked"; }
(cd "$T" && MANPATH=$T/man systemd-analyze verify "$MAN" "$T/unit/vmgate.service") >"$T/verify.out" 2>&1 ||
    { cat "$T/verify.out"; fail "systemd-analyze verify failed"; }
[ -s "$T/verify.out" ] && { cat "$T/verify.out"; fail "systemd-analyze verify printed warnings"; }
say "systemd-analyze verify: clean"

if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
    (cd "$T/unit" && systemd-analyze security --offline=true --no-pager vmgate.service) >"$T/security.out" 2>&1 || true
    score=$(sed -n 's/.*Overall exposure level for vmgate.service: \([0-9.]*\).*/\1/p' "$T/security.out")
    [ -n "$score" ] || { cat "$T/security.out"; fail "no exposure figure from systemd-analyze security"; }
    say "systemd-analyze security: exposure $score"
    awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }' ||
        { cat "$T/security.out"; fail "exposure $score > 3.0: hardening lost"; }
else
    say "this systemd-analyze has no --offline: exposure not measured"
fi

for want in 'Type=notify' 'NotifyAccess=main' 'ExecReload=/bin/kill -HUP $MAINPID' \
    'RuntimeDirectory=vmgate' 'Wants=network-online.target' 'NoNewPrivileges=yes' \
    'ProtectSystem=strict' 'SystemCallFilter=@system-service'; do
    grep -qxF -- "$want" "$UNIT" || fail "dist/vmgate.service lacks '$want'"
done
grep -qE '^After=.*network-online\.target' "$UNIT" && grep -qE '^After=.*nftables\.service' "$UNIT" ||
    fail "dist/vmgate.service is not ordered after network-online.target and nftables.service"
true
