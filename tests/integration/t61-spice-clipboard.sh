#!/bin/bash
# t61-spice-clipboard: the clipboard policy on the SPICE main channel, against
# a real SPICE server with a clipboard: tests/tools/spice_fakesrv (libspice-
# server with a fake guest agent, on a unix socket with ticketing disabled)
# and a spice-gtk viewer driven through GObject introspection
# (tests/tools/spice_clip.py).  For clipboard = both / to-vm / from-vm / none
# and an over-size limit:
#   - each direction passes or is blocked exactly as configured;
#   - over clipboard_max, the requester gets an empty answer (type NONE);
#   - one audit line per transfer (direction, bytes, SHA-256, result, reason),
#     never the text;
#   - the viewer never stalls: after 15 dropped agent messages (more than the
#     10 agent tokens a viewer starts with) its next request still goes out.
. "$(dirname "$0")/lib.sh"
. "$TOOLS/spice_lib.sh"
spice_need_gi
pkg-config --exists spice-server 2>/dev/null || skip "libspice-server-dev not installed (needed for the fake SPICE backend)"

FAKESRV=$T/fakesrv
gcc -O1 -Wall -o "$FAKESRV" "$TOOLS/spice_fakesrv/fakesrv.c" $(pkg-config --cflags --libs spice-server) -lcrypto \
    >"$T/fakesrv.build" 2>&1 || { cat "$T/fakesrv.build"; fail "building the fake SPICE server failed"; }

make_certs
make_passwd alice 'alice-good-pw'
printf 'guest text: Grüße aus der VM — 1234' >"$T/guest.txt"
printf 'viewer text: bonjour à la VM ✓' >"$T/viewer.txt"
"$PY" -c 'import sys; open(sys.argv[1], "w").write("G" * 3000)' "$T/guest.big"
"$PY" -c 'import sys; open(sys.argv[1], "w").write("V" * 5000)' "$T/viewer.big"
sha() { sha256sum "$1" | cut -d' ' -f1; }

declare -A FPID=()
start_fake() {   # NAME GUESTFILE
    add_log "$T/fake.$1.log"
    "$FAKESRV" "$T/$1.spice" "$2" >"$T/fake.$1.log" 2>&1 </dev/null &
    FPID[$1]=$!
    track "${FPID[$1]}"
    wait_for 10 grep -q READY "$T/fake.$1.log" || fail "fake SPICE server $1 did not start"
}
start_fake both "$T/guest.txt"
start_fake tovm "$T/guest.txt"
start_fake fromvm "$T/guest.txt"
start_fake none "$T/guest.txt"
start_fake big "$T/guest.big"
declare -A P=()
args=()
for v in both tovm fromvm none big; do
    P[$v]=$(free_port)
done
write_config "$T/vmgate.conf" -- \
    vm both spice="unix:$T/both.spice" spice_port="${P[both]}" users=alice clipboard=both \
    vm tovm spice="unix:$T/tovm.spice" spice_port="${P[tovm]}" users=alice clipboard=to-vm \
    vm fromvm spice="unix:$T/fromvm.spice" spice_port="${P[fromvm]}" users=alice clipboard=from-vm \
    vm none spice="unix:$T/none.spice" spice_port="${P[none]}" users=alice clipboard=none \
    vm big spice="unix:$T/big.spice" spice_port="${P[big]}" users=alice clipboard_max=1K
start_spice_gateway "$T/vmgate.conf"

audit() {   # VM DIR RESULT-ERE
    count_log "vm=$1 user=alice from=[^ ]+: clipboard dir=$2 $3"
}
audit_offer() {   # VM DIR RESULT-ERE: an offer refused by the policy (same line as VNC's)
    count_log "vm=$1 user=alice from=[^ ]+: clipboard-offer dir=$2 $3"
}
get() {   # VM -> prints the GOT line (or NO GRAB/NO DATA)
    spice_clip alice 'alice-good-pw' "${P[$1]}" get 8 >"$T/get.$1.log" 2>&1 || true
    grep -E '^(GOT|NO )' "$T/get.$1.log" | tail -n 1
}
put() {   # VM FILE: the viewer offers FILE; waits a few seconds
    spice_clip alice 'alice-good-pw' "${P[$1]}" put "$2" 4 >"$T/put.$1.log" 2>&1 ||
        { cat "$T/put.$1.log"; fail "viewer on $1 could not grab its clipboard"; }
}

# both: both directions, one audit line each, with the right hash
r=$(get both)
[ "$r" = "GOT bytes=$(stat -c %s "$T/guest.txt") sha256=$(sha "$T/guest.txt") type=1" ] ||
    { cat "$T/get.both.log"; fail "both: guest -> viewer: $r"; }
[ "$(audit both from-vm "bytes=$(stat -c %s "$T/guest.txt") type=utf8-text sha256=$(sha "$T/guest.txt") result=allowed")" -eq 1 ] ||
    fail "both: expected one from-vm audit line with the text's hash"
put both "$T/viewer.txt"
wait_for 5 grep -q "CLIENT CLIPBOARD type=1 bytes=$(stat -c %s "$T/viewer.txt") sha256=$(sha "$T/viewer.txt")" "$T/fake.both.log" ||
    { cat "$T/fake.both.log"; fail "both: viewer -> guest did not arrive"; }
[ "$(audit both to-vm "bytes=$(stat -c %s "$T/viewer.txt") type=utf8-text sha256=$(sha "$T/viewer.txt") result=allowed")" -eq 1 ] ||
    fail "both: expected one to-vm audit line"
say "both: guest -> viewer and viewer -> guest pass, one audit line each"

# to-vm: the guest's offer never reaches the viewer; the viewer's text reaches the guest
r=$(get tovm)
[ "$r" = "NO GRAB" ] || { cat "$T/get.tovm.log"; fail "to-vm: the guest's clipboard reached the viewer ($r)"; }
[ "$(audit_offer tovm from-vm 'result=dropped reason="policy: clipboard = to-vm"')" -ge 1 ] ||
    fail "to-vm: no audit line for the blocked guest offer"
put tovm "$T/viewer.txt"
wait_for 5 grep -q "CLIENT CLIPBOARD type=1 bytes=$(stat -c %s "$T/viewer.txt")" "$T/fake.tovm.log" ||
    { cat "$T/fake.tovm.log"; fail "to-vm: viewer -> guest did not arrive"; }
say "to-vm: only viewer -> guest passes"

# from-vm: the reverse
r=$(get fromvm)
[ "${r%% *}" = GOT ] || { cat "$T/get.fromvm.log"; fail "from-vm: guest -> viewer blocked ($r)"; }
put fromvm "$T/viewer.txt"
sleep 1
grep -q 'AGENT viewer grab\|CLIENT CLIPBOARD' "$T/fake.fromvm.log" &&
    { cat "$T/fake.fromvm.log"; fail "from-vm: the viewer's clipboard reached the guest"; }
[ "$(audit_offer fromvm to-vm 'result=dropped reason="policy: clipboard = from-vm"')" -ge 1 ] ||
    fail "from-vm: no audit line for the blocked viewer offer"
say "from-vm: only guest -> viewer passes"

# none: neither
r=$(get none)
[ "$r" = "NO GRAB" ] || fail "none: guest -> viewer passed ($r)"
put none "$T/viewer.txt"
sleep 1
grep -q 'AGENT viewer grab\|CLIENT CLIPBOARD' "$T/fake.none.log" && fail "none: viewer -> guest passed"
say "none: nothing passes"

# over clipboard_max (1K): both sides get an empty answer; audit says why
r=$(get big)
[ "$r" = "GOT bytes=0 sha256=$(printf '' | sha256sum | cut -d' ' -f1) type=0" ] ||
    { cat "$T/get.big.log"; fail "big: expected an empty (type NONE) answer, got: $r"; }
[ "$(audit big from-vm "bytes=3000 type=utf8-text sha256=$(sha "$T/guest.big") result=dropped reason=\"over clipboard_max \\(1024 bytes\\)\"")" -eq 1 ] ||
    fail "big: no audit line for the dropped guest text"
put big "$T/viewer.big"
wait_for 5 grep -q 'AGENT viewer clipboard none' "$T/fake.big.log" ||
    { cat "$T/fake.big.log"; fail "big: the guest got no empty answer"; }
grep -q 'CLIENT CLIPBOARD type=1' "$T/fake.big.log" && fail "big: over-size viewer text reached the guest"
[ "$(audit big to-vm "bytes=5000 type=utf8-text sha256=$(sha "$T/viewer.big") result=dropped")" -eq 1 ] ||
    fail "big: no audit line for the dropped viewer text"
say "over clipboard_max: dropped both ways, requesters answered, audited"

# the viewer never stalls: 15 dropped agent messages, then a request that must pass
spice_clip alice 'alice-good-pw' "${P[fromvm]}" stall 15 10 >"$T/stall.log" 2>&1 || true
grep -q '^GOT bytes=' "$T/stall.log" ||
    { cat "$T/stall.log"; fail "the viewer stalled after 15 dropped agent messages (tokens not returned?)"; }
say "15 dropped viewer messages later, the viewer's request still went through"

for f in guest.txt viewer.txt; do
    grep -qF -- "$(cat "$T/$f")" "$VMGATE_LOG" && fail "clipboard text of $f appears in the log"
done
true
