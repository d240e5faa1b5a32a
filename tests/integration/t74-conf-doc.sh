#!/bin/bash
# t74-conf-doc: vmgate.conf(5) documents every config key vmgate accepts (the
# key tables in common/config.c), under the right section, and the shipped
# default config (dist/vmgate.conf) names each one too and passes
# `vmgate check`.  A key added to config.c without its documentation fails here.
. "$(dirname "$0")/lib.sh"
need_vmgate
MAN=$ROOT/docs/vmgate.conf.5
CONF=$ROOT/dist/vmgate.conf

# table NAME: the key names of one `static const struct key_def NAME[]` table
table() {
    sed -n "/^static const struct key_def $1\[\] = {/,/^};/p" "$ROOT/common/config.c" |
        sed -n 's/^ *{ "\([a-z_]*\)",.*/\1/p'
}
# man_section TITLE: the man page text from ".SH TITLE" to the next .SH
man_section() {
    awk -v t=".SH $1" 'index($0, ".SH ") == 1 { on = ($0 == t || index($0, t " ") == 1) } on' "$MAN"
}
missing=0
for pair in "gw_keys:[gateway]" "fw_keys:[firewall]" "vm_keys:[vm NAME]"; do
    tab=${pair%%:*} sec=${pair#*:}
    keys=$(table "$tab")
    [ -n "$keys" ] || fail "no keys found in common/config.c table $tab (did it move?)"
    man_section "$sec" >"$T/sec.txt"
    [ -s "$T/sec.txt" ] || fail "vmgate.conf(5) has no section .SH $sec"
    for k in $keys; do
        if ! grep -qE "^\.BR? ([^ ]+ )*\"?$k\"?( |,|$)|^\.BR? .*\"? ?$k\"?( |,|$)" "$T/sec.txt"; then
            echo "vmgate.conf(5) $sec does not document $k"; missing=$((missing + 1))
        fi
        grep -qE "^#? *$k *=" "$CONF" || { echo "dist/vmgate.conf does not mention $k"; missing=$((missing + 1)); }
    done
    say "$sec: $(echo $keys | wc -w) keys"
done
[ "$missing" -eq 0 ] || fail "$missing key(s) undocumented"
"$VMGATE" check -c "$CONF" >"$T/check.out" 2>&1 || { cat "$T/check.out"; fail "vmgate check refuses dist/vmgate.conf"; }
grep -q 'no \[vm\] sections' "$T/check.out" || fail "dist/vmgate.conf should define no VM"
true
