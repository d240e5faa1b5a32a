#!/bin/bash
# t53-clip-soak: against a real QEMU (qmp: backend, vmgate hands it each
# connection), sessions with constant screen traffic keep vmgate's parser in
# sync.  The guest is tests/tools/clip_soakboot.S, a boot sector that keeps
# writing random characters and colours (text mode) or random 256-colour
# pixels (mode 13h) and switches between the two, so the desktop size
# changes; QMP send-key types into it (each key switches the mode), and a
# system_reset now and then adds SeaBIOS's own redraws.  (Without as/ld to
# build it, SeaBIOS alone, reset every second, is the traffic.)  This for
# each encoding and pixel format a viewer may choose:
#   - TigerVNC vncviewer with -PreferredEncoding Tight, ZRLE, Hextile, Raw,
#     in full colour (32 bpp; Tight sends 3-byte pixels) and low colour
#     (-LowColorLevel 0/1/2: 8 bpp);
#   - at the same time a libvncclient viewer (tests/tools/clip_lvc) asking
#     for 16 bpp (RGB565), 8 bpp (BGR233) or 32 bpp, with one encoding each;
# and the clipboard crosses QEMU in the middle of it, in both directions,
# through both translations (TigerVNC -> QEMU -> legacy viewer, legacy
# viewer -> QEMU -> TigerVNC), each transfer audited.  At the end of each
# phase: vmgate never said "cannot follow", no session ended, and both
# viewers show what QEMU's own screendump shows.
#
# CLIP_SOAK_SECONDS (default 16): total seconds of traffic, split over the
# phases (at least 2 s each).  Raise it for a longer soak.
# CLIP_SOAK_GUEST=seabios: no boot sector, SeaBIOS alone.
. "$(dirname "$0")/lib.sh"
need_vmgate
command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not installed (package qemu-system-x86)"
for c in Xvfb:xvfb vncviewer:tigervnc-viewer xclip:xclip; do
    command -v "${c%%:*}" >/dev/null 2>&1 || skip "${c%%:*} not installed (package ${c#*:})"
done
build_clip_lvc

# TigerVNC: ENCODING:full|LOWCOLORLEVEL     clip_lvc: BPP:ENCODINGS
TV=(Tight:full ZRLE:full Hextile:full Raw:full Tight:0 ZRLE:1 Hextile:2 Raw:2)
# (default: libvncclient's own list, with ultra, zlib, corre, rre, copyrect)
LV=(16:tight 16:zrle 16:hextile 16:raw 8:tight 32:zrle 8:hextile 32:default)
SOAK=${CLIP_SOAK_SECONDS:-16}
PER=$((SOAK / ${#TV[@]}))
[ "$PER" -ge 2 ] || PER=2

PW='soak pw 53'
make_certs
make_passwd alice "$PW"
BOOT=()
if [ "${CLIP_SOAK_GUEST:-}" != seabios ] && command -v as >/dev/null 2>&1 && command -v ld >/dev/null 2>&1 &&
    as --32 -o "$T/boot.o" "$TOOLS/clip_soakboot.S" >"$T/boot.build" 2>&1 &&
    ld -m elf_i386 -Ttext 0x7c00 -e _start --oformat binary -o "$T/boot.img" "$T/boot.o" >>"$T/boot.build" 2>&1 &&
    [ "$(wc -c <"$T/boot.img")" -eq 512 ]; then
    BOOT=(-drive "file=$T/boot.img,format=raw,if=floppy")
else
    cat "$T/boot.build" 2>/dev/null || true
    say "no boot sector (${CLIP_SOAK_GUEST:-as/ld missing or failed}): the traffic is SeaBIOS being reset"
fi
start_qemu a qmp "${BOOT[@]}"
PORT=$(free_port)
write_config "$T/vmgate.conf" -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users=alice clipboard=both
start_vmgate "$T/vmgate.conf"

sha() { sha256sum <"$1" | cut -d' ' -f1; }
bytes() { wc -c <"$1" | tr -d ' '; }
latin1() { "$PY" -c 'import sys; sys.stdout.write(open(sys.argv[1], encoding="utf-8").read().encode("latin-1", "replace").hex())' "$1"; }
audited() {   # DIR FILE: a result=allowed line for this text
    expect_log "vm=a user=alice from=[^ ]+: clipboard dir=$1 bytes=$(bytes "$2") type=utf8-text sha256=$(sha "$2") result=allowed\$" 5
}

# traffic: until $T/stop exists, type into the guest (each key switches its
# screen mode) and reset it now and then
traffic() {
    local n=0 k
    while [ ! -e "$T/stop" ]; do
        if [ ${#BOOT[@]} -eq 0 ] || [ $((n % 6)) -eq 5 ]; then
            qmp_cmd a system_reset >/dev/null 2>&1 || true
        else
            for k in a s d; do qmp_cmd a send-key "$k" >/dev/null 2>&1 || true; done
        fi
        n=$((n + 1))
        sleep 0.5
    done
}
# still: make the guest's screen stop changing
still() {
    if [ ${#BOOT[@]} -gt 0 ]; then
        qmp_cmd a send-key q >/dev/null || fail "send-key q failed"
    fi
}

# shows WHO SHOT TOOL [ARGS]: wait (20 s at most) until SHOT matches QEMU's
# screendump according to $TOOLS/TOOL; for SHOT $T/lvc.ppm, dump the legacy
# viewer's framebuffer there first, every time
shows() {
    local who=$1 shot=$2 end n
    shift 2
    end=$(($(now_ms) + 20000))
    while :; do
        if [ "$shot" = "$T/lvc.ppm" ]; then
            n=$(grep -c '^dumped ' "${LVC_OUT[l]}" || true)
            lvc_cmd l "dump $shot"
            wait_for 5 eval "[ \$(grep -c '^dumped ' '${LVC_OUT[l]}') -gt $n ]" ||
                fail "$what: libvncclient did not dump its screen"
        fi
        screendump a "$T/ref.png"
        if "$PY" "$TOOLS/$1" "${@:2}" "$shot" "$T/ref.png" >"$T/cmp.out"; then
            say "$who shows QEMU's screen: $(cat "$T/cmp.out")"
            return 0
        fi
        [ "$(now_ms)" -lt "$end" ] || break
        sleep 0.3
    done
    cp "$T/ref.png" "$T/failed.ref.png" 2>/dev/null || true
    fail "$what: $who's screen does not match QEMU's: $(cat "$T/cmp.out")"
}

phases=0
for i in "${!TV[@]}"; do
    enc=${TV[i]%%:*} col=${TV[i]#*:} bpp=${LV[i]%%:*} lenc=${LV[i]#*:}
    what="phase $i: TigerVNC $enc/$([ "$col" = full ] && echo 32bpp || echo "low colour $col"), libvncclient $lenc/${bpp}bpp"
    say "---- $what"
    args=(-AutoSelect=0 -PreferredEncoding "$enc" -Log "$VV_CLIP_LOG" -MenuKey=)
    if [ "$col" = full ]; then args+=(-FullColor=1); else args+=(-FullColor=0 -LowColorLevel="$col"); fi
    vncviewer_start v alice "$PW" "$PORT" "${args[@]}"
    expect_viewer_connected v
    VD=${XV_DISPLAY[v]}
    "$PY" "$TOOLS/clip_focus.py" "$VD" TigerVNC >/dev/null || fail "$what: could not focus the viewer"
    # CLIP_LVC_RECONNECT: libvncclient gives up on a session when QEMU sends a
    # rectangle of the other surface size right after a resize ("Rect too
    # large"; reproduced with libvncclient straight to QEMU 7.2 under this
    # traffic, no vmgate): then it logs in again and says so, and the
    # session counts below allow for it
    CLIP_LVC_RECONNECT=1 CLIP_LVC_BPP=$bpp CLIP_LVC_ENCODINGS=${lenc#default} \
        lvc_start l alice "$PW" "$PORT"
    lvc_expect l "^connected [0-9]+x[0-9]+ bpp=$bpp\$" 20
    n_started=$(grep -c 'session started' "$VMGATE_LOG")
    n_ended=$(grep -c 'session ended' "$VMGATE_LOG" || true)

    rm -f "$T/stop"
    qmp_cmd a system_reset >/dev/null || fail "system_reset failed"   # (re)start the guest
    traffic &
    tpid=$!
    track "$tpid"
    t_end=$(($(now_ms) + PER * 1000))

    # the clipboard across QEMU, both ways, while the screen keeps changing
    s=$T/tv.$i.txt l=$T/lv.$i.txt
    printf 'phase %s: héllo ☃ мир via QEMU %s' "$i" "$RANDOM" >"$s"
    nre=$(grep -c '^reconnected ' "${LVC_OUT[l]}" || true)
    xclip_set "$VD" "$s"
    want=$(latin1 "$s")
    # a log-in again (see CLIP_LVC_RECONNECT) while the text was on its way
    # loses it for libvncclient: then the clipboard is set again, up to 3 times
    for try in 1 2 3 4; do
        wait_for 15 lvc_has l "^cuttext len=$((${#want} / 2)) hex=$want\$" && break
        [ "$try" -lt 4 ] && [ "$(grep -c '^reconnected ' "${LVC_OUT[l]}" || true)" -gt "$nre" ] ||
            lvc_expect l "^cuttext len=$((${#want} / 2)) hex=$want\$" 1
        say "$what: libvncclient logged in again while the text was on its way: the clipboard is set again"
        nre=$(grep -c '^reconnected ' "${LVC_OUT[l]}" || true)
        xclip_set "$VD" "$s"
    done
    audited to-vm "$s"
    audited from-vm "$s"
    printf 'phase %s: Grüße ± from libvncclient via QEMU %s' "$i" "$RANDOM" >"$l"
    lvc_cmd l send "$(latin1 "$l")"
    expect_clip "$VD" "$l" 15 "$what: legacy viewer -> QEMU -> TigerVNC"
    audited to-vm "$l"
    audited from-vm "$l"

    while [ "$(now_ms)" -lt "$t_end" ]; do sleep 0.1; done
    touch "$T/stop"
    wait "$tpid" 2>/dev/null || true
    still
    phases=$((phases + 1))

    log_has 'cannot follow' && fail "$what: $(grep 'cannot follow' "$VMGATE_LOG" | head -n 1)"
    re=$(grep -c '^reconnected ' "${LVC_OUT[l]}" || true)
    [ "$re" -eq 0 ] || say "$what: libvncclient logged in again $re time(s): $(grep '^reconnected ' "${LVC_OUT[l]}" | head -n 1)"
    [ "$(grep -c 'session ended' "$VMGATE_LOG" || true)" -eq $((n_ended + re)) ] ||
        fail "$what: a session ended: $(grep 'session ended' "$VMGATE_LOG" | tail -n 1)"
    viewer_alive v || fail "$what: TigerVNC viewer exited"
    viewer_log_has v "$VV_FAIL" && fail "$what: viewer error: $(grep -E -- "$VV_FAIL" "${VV_LOG[v]}" | tail -n 1)"
    lvc_alive l
    [ "$(grep -c 'session started' "$VMGATE_LOG")" -eq $((n_started + re)) ] || fail "$what: unexpected new session"
    ups=$(sed -n 's/^refreshed //p' "${LVC_OUT[l]}" | tail -n 1)
    [ "${ups:-0}" -ge 5 ] || fail "$what: only ${ups:-0} framebuffer updates reached libvncclient: no traffic?"
    say "$what: libvncclient decoded $ups framebuffer updates"

    # both viewers end up showing QEMU's screen (one bit per channel: grey
    # comes out white, so compare shapes only)
    if [ "$col" = 0 ]; then cmp=clip_shapecmp.py; else cmp="imgcmp.py compare"; fi
    # shellcheck disable=SC2086
    shows "TigerVNC" "${VV_FB[v]}" $cmp
    shows libvncclient "$T/lvc.ppm" imgcmp.py compare
    grep -q "Using pixel format depth $([ "$col" = full ] && echo 24 || echo '[368]')" "${VV_LOG[v]}" ||
        fail "$what: viewer did not use the expected pixel format: $(grep 'pixel format' "${VV_LOG[v]}" | tail -n 1)"
    stop_viewer v
    lvc_stop l
    wait_for 10 eval '[ "$(grep -c "session ended" "$VMGATE_LOG")" -eq $((n_ended + 2 + re)) ]' ||
        fail "$what: the two sessions did not end"
done
log_has 'result=dropped' && fail "a transfer was dropped: $(grep 'result=dropped' "$VMGATE_LOG" | head -n 1)"
for w in 'héllo' 'мир' 'Grüße' 'via QEMU'; do
    grep -qF -- "$w" "$VMGATE_LOG" && fail "clipboard text fragment '$w' in vmgate's log"
done
say "$phases phases of ${PER}s, $(grep -c ': clipboard dir=' "$VMGATE_LOG") audited transfers, never out of sync"
