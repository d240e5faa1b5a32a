#!/bin/bash
# t52-clip-policy: the clipboard policy, per VM, against a real clipboard on
# both ends (one Xvnc behind five VM sections; TigerVNC vncviewer, which
# speaks Extended Clipboard, and clip_lvc, which speaks only legacy cut text).
#   [gateway] clipboard = none, clipboard_max = 1K are the defaults; VMs
#   both / tovm / fromvm override them, "none" and "small" inherit them.
#   - both: each direction passes;
#   - to-vm: viewer -> VM passes, VM -> viewer never arrives;
#   - from-vm: the reverse;
#   - none: neither;
#   - small (1K): exactly 1024 bytes of UTF-8 pass, 1025 are dropped and
#     logged as over clipboard_max, in both directions;
#   - one audit line per transfer: per session, as many allowed from-vm lines
#     as the viewer received texts, and as many to-vm lines as it sent; text
#     that reaches the gateway and is refused is logged result=dropped with
#     the reason (legacy cut text; an Extended Clipboard notify that is
#     refused carries no text, so nothing is transferred or logged);
#   - after every drop the session is still up, and a later transfer in an
#     allowed direction still works.  Never the text in the log;
#   - the limit applies to what would reach the VM: Latin-1 legacy text that
#     is under clipboard_max but over it once translated to UTF-8 is dropped.
. "$(dirname "$0")/lib.sh"
need_vmgate
need_clip_tools
build_clip_lvc

PW='policy pw 52'
make_certs
make_passwd alice "$PW"
start_xvnc x unix
XD=${XVNC_DISPLAY[x]}
BE=${XVNC_BACKEND[x]}
declare -A P=()
VMS=(both tovm fromvm none small)
for v in "${VMS[@]}"; do P[$v]=$(free_port); done
write_config "$T/vmgate.conf" clipboard=none clipboard_max=1K -- \
    vm both vnc="$BE" vnc_port="${P[both]}" users=alice clipboard=both clipboard_max=256K \
    vm tovm vnc="$BE" vnc_port="${P[tovm]}" users=alice clipboard=to-vm clipboard_max=256K \
    vm fromvm vnc="$BE" vnc_port="${P[fromvm]}" users=alice clipboard=from-vm clipboard_max=256K \
    vm none vnc="$BE" vnc_port="${P[none]}" users=alice \
    vm small vnc="$BE" vnc_port="${P[small]}" users=alice clipboard=both
start_vmgate "$T/vmgate.conf" 5

BLOCK_WAIT=${CLIP_BLOCK_WAIT:-1.5}   # how long a blocked text gets to (not) arrive
sha() { sha256sum <"$1" | cut -d' ' -f1; }
bytes() { wc -c <"$1" | tr -d ' '; }
latin1() { "$PY" -c 'import sys; sys.stdout.write(open(sys.argv[1], encoding="utf-8").read().encode("latin-1", "replace").hex())' "$1"; }
# newtext WHAT [SIZE [ascii]]: a fresh, unique text file (UTF-8, Latin-1
# representable; with SIZE: exactly SIZE bytes of UTF-8, and with "ascii"
# plain ASCII, the same size in Latin-1); prints its name
newtext() {
    local f id
    f=$(mktemp "$T/text.XXXXXX")
    id=${f##*.}
    if [ -n "${2:-}" ]; then
        "$PY" -c 'import sys
n = int(sys.argv[2]); head = ("%s %s #%s " % ("Gruesse" if sys.argv[5] else "Grüße", sys.argv[3], sys.argv[4])).encode()
open(sys.argv[1], "wb").write((head + b"x" * n)[:n])' "$f" "$2" "$1" "$id" "${3:-}"
    else
        printf '%s: Grüße ± ½ #%s' "$1" "$id" >"$f"
    fi
    echo "$f"
}
# audits VM DIR FILE RESULT-ERE: audit lines for exactly FILE's text
audits() {
    grep -Ec -- "vm=$1 user=alice from=[^ ]+: clipboard dir=$2 bytes=$(bytes "$3") type=utf8-text sha256=$(sha "$3") result=$4" "$VMGATE_LOG" || true
}
# expect_audit VM DIR FILE RESULT-ERE: FILE's text was logged with this result
# (once per transfer: Xvnc may ask for the same clipboard more than once, so
# the per-session totals are checked against the viewers' own counts in
# check_counts), and never with another result
some_audit() { [ "$(audits "$@")" -ge 1 ]; }
expect_audit() {
    wait_for 5 some_audit "$@" ||
        { grep ': clipboard' "$VMGATE_LOG" | tail -n 5; fail "vm $1: no audit line dir=$2 $(bytes "$3") bytes result=$4"; }
    [ "$(audits "$1" "$2" "$3" '')" -eq "$(audits "$@")" ] ||
        { grep ': clipboard' "$VMGATE_LOG" | tail -n 5; fail "vm $1: $2 text logged with another result than $4"; }
}
# conn_audits DIR RESULT-ERE: audit lines of the newest session
conn_audits() {
    local c
    c=$(sed -n 's/.* conn=\([0-9]*\) .*: session started .*/\1/p' "$VMGATE_LOG" | tail -n 1)
    grep -Ec -- " conn=$c vm=[^ ]+ user=alice from=[^ ]+: clipboard dir=$1 bytes=[0-9]+ type=utf8-text sha256=[-0-9a-f]+ result=$2" "$VMGATE_LOG" || true
}
# check_counts WHAT RECEIVED-CMD SENT-CMD: one audit line per transfer: as
# many allowed from-vm lines as the viewer received, as many to-vm lines
# (allowed or dropped) as it sent (the CMDs print the viewer's counts)
counts_match() {
    [ "$(conn_audits from-vm allowed)" -eq "$($2)" ] && [ "$(conn_audits to-vm '(allowed|dropped)')" -eq "$($3)" ]
}
check_counts() {
    wait_for 5 counts_match "$@" ||
        fail "$1: audit lines from-vm allowed $(conn_audits from-vm allowed) / to-vm $(conn_audits to-vm '(allowed|dropped)'), but the viewer received $($2) and sent $($3)"
    say "$1: one audit line per transfer ($($2) received, $($3) sent)"
}
no_allowed() {   # VM DIR FILE
    [ "$(audits "$1" "$2" "$3" allowed)" -eq 0 ] || fail "vm $1: a blocked $2 text was logged as allowed"
}

# ---- the transfers, for a TigerVNC viewer (Xvfb "e") and a legacy one ("l")
VD=
ext_s2c() {   # VM pass|block [FILE]
    local f=${3:-$(newtext "to viewer $1")}
    xclip_set "$XD" "$f"
    if [ "$2" = pass ]; then
        expect_clip "$VD" "$f" 10 "vm $1: VM -> TigerVNC"
        expect_audit "$1" from-vm "$f" allowed
    else
        sleep "$BLOCK_WAIT"
        XCLIP_TIMEOUT=2 xclip_is "$VD" "$f" && fail "vm $1: VM -> TigerVNC text arrived, should be blocked"
        no_allowed "$1" from-vm "$f"
        say "vm $1: VM -> TigerVNC blocked"
    fi
}
ext_c2s() {   # VM pass|block [FILE]
    local f=${3:-$(newtext "to VM from TigerVNC $1")}
    xclip_set "$VD" "$f"
    if [ "$2" = pass ]; then
        expect_clip "$XD" "$f" 10 "vm $1: TigerVNC -> VM"
        expect_audit "$1" to-vm "$f" allowed
    else
        sleep "$BLOCK_WAIT"
        XCLIP_TIMEOUT=2 xclip_is "$XD" "$f" && fail "vm $1: TigerVNC -> VM text arrived, should be blocked"
        no_allowed "$1" to-vm "$f"
        say "vm $1: TigerVNC -> VM blocked"
    fi
}
lvc_s2c() {   # VM pass|block [FILE]
    local f=${3:-$(newtext "to legacy $1")} want
    want=$(latin1 "$f")
    xclip_set "$XD" "$f"
    if [ "$2" = pass ]; then
        lvc_expect l "^cuttext len=$((${#want} / 2)) hex=$want\$"
        say "vm $1: VM -> legacy viewer: arrived"
        expect_audit "$1" from-vm "$f" allowed
    else
        sleep "$BLOCK_WAIT"
        lvc_has l "hex=$want\$" && fail "vm $1: VM -> legacy viewer text arrived, should be blocked"
        no_allowed "$1" from-vm "$f"
        say "vm $1: VM -> legacy viewer blocked"
    fi
}
lvc_c2s() {   # VM pass|block [FILE]
    local f=${3:-$(newtext "to VM from legacy $1")}
    lvc_cmd l send "$(latin1 "$f")"
    if [ "$2" = pass ]; then
        expect_clip "$XD" "$f" 10 "vm $1: legacy viewer -> VM"
        expect_audit "$1" to-vm "$f" allowed
    else
        sleep "$BLOCK_WAIT"
        XCLIP_TIMEOUT=2 xclip_is "$XD" "$f" && fail "vm $1: legacy viewer -> VM text arrived, should be blocked"
        no_allowed "$1" to-vm "$f"
        say "vm $1: legacy viewer -> VM blocked"
    fi
}

cnt() { grep -c -- "$1" "$2" || true; }   # ERE FILE: matching lines
ext_got() { cnt 'Got clipboard data' "${VV_LOG[e]}"; }
ext_sent() { cnt 'Sending clipboard data' "${VV_LOG[e]}"; }
lvc_got() { cnt '^cuttext ' "${LVC_OUT[l]}"; }
lvc_sent() { cnt '^sent ' "${LVC_OUT[l]}"; }
ext_counts() { check_counts "$1" ext_got ext_sent; }   # WHAT
lvc_counts() { check_counts "$1" lvc_got lvc_sent; }   # WHAT

ended=0
ext_session() {   # VM S2C C2S: pass|block each; tries each direction twice
    local vm=$1 s2c=$2 c2s=$3
    vncviewer_start e alice "$PW" "${P[$vm]}" -Log "$VV_CLIP_LOG"
    expect_viewer_connected e
    VD=${XV_DISPLAY[e]}
    "$PY" "$TOOLS/clip_focus.py" "$VD" TigerVNC >/dev/null || fail "could not focus the viewer"
    ext_s2c "$vm" "$s2c"
    ext_c2s "$vm" "$c2s"
    ext_s2c "$vm" "$s2c"
    ext_c2s "$vm" "$c2s"
    viewer_alive e || fail "vm $vm: TigerVNC viewer exited"
    viewer_log_has e "$VV_FAIL" && fail "vm $vm: viewer error: $(grep -E -- "$VV_FAIL" "${VV_LOG[e]}" | tail -n 1)"
    ext_counts "vm $vm, TigerVNC"
    stop_viewer e
    ended=$((ended + 1))
    wait_for 10 eval '[ "$(grep -c "session ended" "$VMGATE_LOG")" -eq $ended ]' || fail "vm $vm: no 'session ended'"
}
lvc_session() {   # VM S2C C2S
    local vm=$1 s2c=$2 c2s=$3
    lvc_start l alice "$PW" "${P[$vm]}"
    lvc_expect l '^connected ' 20
    lvc_s2c "$vm" "$s2c"
    lvc_c2s "$vm" "$c2s"
    lvc_s2c "$vm" "$s2c"
    lvc_c2s "$vm" "$c2s"
    lvc_alive l
    lvc_counts "vm $vm, legacy viewer"
    lvc_stop l
    ended=$((ended + 1))
    wait_for 10 eval '[ "$(grep -c "session ended" "$VMGATE_LOG")" -eq $ended ]' || fail "vm $vm: no 'session ended'"
}

ext_session both pass pass
lvc_session both pass pass
ext_session tovm block pass
lvc_session tovm block pass
ext_session fromvm pass block
lvc_session fromvm pass block
ext_session none block block
lvc_session none block block

# legacy text that reaches the gateway and is refused by policy is logged as
# dropped (two texts each)
files() { grep -l -- "$1" "$T"/text.??????"${2:-}" || true; }   # PATTERN [SUFFIX]
expect_dropped() {   # VM DIR REASON PATTERN [SUFFIX]
    local f n=0
    for f in $(files "$4" "${5:-}"); do
        expect_audit "$1" "$2" "$f" "dropped reason=\"$3\""
        n=$((n + 1))
    done
    [ "$n" -eq 2 ] || fail "expected 2 texts matching '$4', found $n"
}
expect_dropped fromvm to-vm 'policy: clipboard = from-vm' 'to VM from legacy fromvm'
expect_dropped none to-vm 'policy: clipboard = none' 'to VM from legacy none'
# with clipboard = none vmgate does not ask Xvnc for Extended Clipboard on the
# legacy viewer's behalf, so Xvnc sends legacy ServerCutText, in Latin-1: it
# is dropped, and the audit line counts and hashes the Latin-1 bytes the VM sent
for f in $(files 'to legacy none'); do
    "$PY" -c 'import sys; open(sys.argv[1] + ".l1", "wb").write(open(sys.argv[1], encoding="utf-8").read().encode("latin-1"))' "$f"
done
expect_dropped none from-vm 'policy: clipboard = none' 'to legacy none' .l1
say "policy drops of legacy cut text are audited"

# ---- clipboard_max (1K inherited from [gateway]): 1024 bytes pass, 1025 do not
# over VM DIR FILE: one dropped audit line, over clipboard_max.  For an
# Extended Clipboard provide the size is the one the sender declared, which
# counts the terminating NUL (so N + 1), and there is no hash (not inflated).
over() {
    local n m
    n=$(bytes "$3"); m="($n|$((n + 1)))"
    wait_for 5 log_has "vm=$1 user=alice from=[^ ]+: clipboard dir=$2 bytes=$m type=utf8-text sha256=[-0-9a-f]+ result=dropped reason=\"over clipboard_max \($m > 1024 bytes\)\"" ||
        { grep ': clipboard' "$VMGATE_LOG" | tail -n 5; fail "vm $1: no 'over clipboard_max' audit line for $n bytes $2"; }
    say "vm $1: $n bytes $2 dropped: $(grep -E "vm=$1 .*: clipboard dir=$2 .*over clipboard_max" "$VMGATE_LOG" | tail -n 1 | sed 's/.*\(bytes=\)/\1/')"
}
vncviewer_start e alice "$PW" "${P[small]}" -Log "$VV_CLIP_LOG"
expect_viewer_connected e
VD=${XV_DISPLAY[e]}
"$PY" "$TOOLS/clip_focus.py" "$VD" TigerVNC >/dev/null || fail "could not focus the viewer"
ext_s2c small pass "$(newtext 'max s2c' 1024)"
f=$(newtext 'over s2c' 1025)
ext_s2c small block "$f"
over small from-vm "$f"
ext_s2c small pass
ext_c2s small pass "$(newtext 'max c2s' 1024)"
f=$(newtext 'over c2s' 1025)
ext_c2s small block "$f"
over small to-vm "$f"
ext_c2s small pass
viewer_alive e || fail "vm small: TigerVNC viewer exited"
ext_counts "vm small, TigerVNC"
stop_viewer e

lvc_start l alice "$PW" "${P[small]}"
lvc_expect l '^connected ' 20
lvc_s2c small pass "$(newtext 'legacy max s2c' 1024)"
f=$(newtext 'legacy over s2c' 1025)
lvc_s2c small block "$f"
over small from-vm "$f"
lvc_s2c small pass
lvc_c2s small pass "$(newtext 'legacy max c2s' 1024 ascii)"
f=$(newtext 'legacy over c2s' 1025 ascii)
lvc_c2s small block "$f"
over small to-vm "$f"
lvc_c2s small pass
lvc_alive l
lvc_counts "vm small, legacy viewer"
lvc_stop l

# nothing lost sync, nothing ended early; never the text in the log
log_has 'cannot follow' && fail "vmgate lost sync: $(grep 'cannot follow' "$VMGATE_LOG")"
for w in 'Grüße' 'to viewer' 'to VM from' 'to legacy' 'xxxxxxxx'; do
    grep -qF -- "$w" "$VMGATE_LOG" && fail "clipboard text fragment '$w' in vmgate's log"
done
say "$(grep -c ': clipboard dir=.*result=allowed' "$VMGATE_LOG") allowed and $(grep -c ': clipboard dir=.*result=dropped' "$VMGATE_LOG") dropped audit lines"
# an Extended Clipboard viewer's refused offer moves no text but is logged as
# a clipboard-offer event (not as a transfer): TigerVNC offered its clipboard
# to the "none" VM and to the "fromvm" VM
for v in none fromvm; do
    log_has "vm=$v user=alice from=[^ ]+: clipboard-offer dir=to-vm result=dropped reason=\"policy: clipboard = (none|from-vm)\"" ||
        fail "vm $v: no clipboard-offer line for the refused to-vm offer"
done
log_has "vm=both .*clipboard-offer" && fail "vm both: an offer was refused"

# ---- the limit holds for what would reach the VM: a legacy ClientCutText of
# 1012 Latin-1 bytes (under the limit) is 1612 bytes once translated to UTF-8
# for the Extended Clipboard VM (over it): it must be dropped, and no allowed
# audit line of vm small may exceed 1024 bytes.
f=$(mktemp "$T/wide.XXXXXX")
"$PY" -c 'import sys; open(sys.argv[1], "w", encoding="utf-8").write("wide %s " % sys.argv[2] + "é" * 600 + "x" * 400)' "$f" "${f##*.}"
lvc_start l alice "$PW" "${P[small]}"
lvc_expect l '^connected ' 20
lvc_c2s small block "$f"
c=$(sed -n 's/.* conn=\([0-9]*\) .*: session started .*/\1/p' "$VMGATE_LOG" | tail -n 1)
log_has " conn=$c vm=small user=alice from=[^ ]+: clipboard dir=to-vm bytes=[0-9]+ type=utf8-text sha256=[-0-9a-f]+ result=dropped reason=\"over clipboard_max" ||
    fail "vm small: the 1612-byte translation was not logged as over clipboard_max"
lvc_alive l
lvc_stop l
big=$(sed -n 's/.* vm=small .*: clipboard dir=[a-z-]* bytes=\([0-9]*\) .*result=allowed$/\1/p' "$VMGATE_LOG" | sort -n | tail -n 1)
[ "${big:-0}" -le 1024 ] ||
    fail "vm small (clipboard_max 1K): an allowed transfer of $big bytes: $(grep -E "vm=small .*bytes=$big .*allowed" "$VMGATE_LOG" | tail -n 1)"
say "vm small: a Latin-1 text that grows over the limit in UTF-8 is dropped"
