#!/usr/bin/env bash
# bench/cu.sh — a viewer over a far, slow link: updates per second, bytes per
# second and the age of what it shows, through vmgate (continuous updates and
# fences, which QEMU lacks), through a byte relay (haproxy terminating TLS in
# front of the VNC server) and straight to the VNC server.
#
# The link is bench/delay_relay.py (user space: the kernel here has no
# netem): CU_DELAY_MS each way, CU_RATE_MBIT each way, a bounded queue of
# CU_QUEUE bytes at its output port.  The client is bench/cu_client.py, which
# asks for updates as TigerVNC 1.12 does.  Scenes:
#   small   QEMU running bench/redraw_boot.S, 2 guest rows (640x8 on the
#           VNC screen) changing 100 times a second: a few characters
#   large   the same guest repainting 148 of its 200 rows 50 times a second
#           (640x300 of 640x400, ~760 KB a frame in Raw at 32 bpp)
#   synth   `vncbench serve`, a server whose 64x64 area is always dirty and
#           answers every request at once (the ceiling of the request loop)
# The guest stamps each frame with its TSC; the client reads the stamps
# back and maps them to its clock over QMP (see cu_client.py): age = how old
# the shown frame was when the next one arrived.
#
# Environment: CU_RTTS ["100 200"] round trips in ms (CU_DELAY_MS = RTT / 2
# each way), CU_RATE_MBIT [20], CU_QUEUE [1048576], CU_SECONDS [6],
# CU_ROUNDS [3] (paths interleaved, medians reported), CU_SCENES
# ["small large synth"], CU_PATHS ["direct haproxy vmgate_off vmgate vmgate_nofence"]
# (vmgate_nofence: the client announces -313 but not -312, so vmgate paces it by
# the kernel's send queue),
# BENCH_QUICK=1 (one round of 4 s, no synth), BUILD [build],
# CU_OUT [bench/results].
# Output: a table on stdout; CU_OUT/cu.csv (every run) and CU_OUT/cu.md (medians).
set -eu
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
case $BUILD in /*) BDIR=$BUILD ;; *) BDIR=$ROOT/$BUILD ;; esac
QUICK=${BENCH_QUICK:-0}
RTTS=${CU_RTTS:-100 200}
RATE=${CU_RATE_MBIT:-20}
QUEUE=${CU_QUEUE:-1048576}
if [ "$QUICK" = 1 ]; then
    SECS=${CU_SECONDS:-4} ROUNDS=${CU_ROUNDS:-1} SCENES=${CU_SCENES:-small large}
else
    SECS=${CU_SECONDS:-6} ROUNDS=${CU_ROUNDS:-3} SCENES=${CU_SCENES:-small large synth}
fi
PATHS=${CU_PATHS:-direct haproxy vmgate_off vmgate vmgate_nofence}
OUT=${CU_OUT:-$ROOT/bench/results}
PY=/usr/bin/python3
PATH=$PATH:/usr/sbin:/sbin
T=$(mktemp -d /tmp/vmg-cubench.XXXXXX)
PIDS=() LINKS=()
cleanup() {
    for p in "${LINKS[@]}" "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${CU_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
T0=$(date +%s)
say() { printf '[cu %4ss] %s\n' $(( $(date +%s) - T0 )) "$*" >&2; }
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
wait_port() { for _ in $(seq 1 100); do listening "$1" && return 0; sleep 0.1; done; echo "port $1 never listened" >&2; exit 1; }
vnc_port() {   # a free port >= 5900 for QEMU's -vnc 127.0.0.1:N
    local p
    while :; do p=$(port); [ "$p" -gt 5999 ] && { echo "$p"; return; }; done
}

[ -x "$BDIR/vmgate" ] || { echo "build vmgate first (make)"; exit 1; }
command -v haproxy >/dev/null || { echo "haproxy missing (scripts/deps.sh)"; exit 1; }
gcc -O2 -std=gnu17 -pthread -o "$T/vncbench" bench/vncbench.c -lssl -lcrypto
"$BDIR/vmgate" certs init --dir "$T/tls" --name localhost,127.0.0.1 >/dev/null
cat "$T/tls/server.crt" "$T/tls/server.key" >"$T/tls/haproxy.pem"
printf 'bench pw\n' | "$BDIR/vmgate" passwd "$T/passwd" bench >/dev/null

# ---------------------------------------------------------------- backends
declare -A BE=() QMPS=() HP=() VG=() VGOFF=()
boot() {   # name HZ ROWS -> $T/name.img
    as --32 --defsym HZ="$2" --defsym ROWS="$3" -o "$T/$1.o" bench/redraw_boot.S
    ld -m elf_i386 -Ttext 0x7c00 -e _start --oformat binary -o "$T/$1.img" "$T/$1.o"
}
for s in $SCENES; do
    case $s in
    small|large)
        if [ $s = small ]; then boot $s 100 2; else boot $s 50 148; fi
        BE[$s]=$(vnc_port)
        QMPS[$s]=$T/$s.qmp
        qemu-system-x86_64 -display none -nic none -m 16 -machine accel=tcg -name "cu-$s" \
            -qmp "unix:${QMPS[$s]},server=on,wait=off" -vnc "127.0.0.1:$(( BE[$s] - 5900 ))" \
            -drive "file=$T/$s.img,format=raw,if=floppy" >"$T/qemu.$s.log" 2>&1 </dev/null &
        PIDS+=($!) ;;
    synth)
        BE[$s]=$(port)
        "$T/vncbench" serve --port "${BE[$s]}" 2>"$T/serve.log" & PIDS+=($!) ;;
    *) echo "unknown scene $s" >&2; exit 1 ;;
    esac
    HP[$s]=$(port) VG[$s]=$(port) VGOFF[$s]=$(port)
done

{
cat <<CONF
[gateway]
address = 127.0.0.1
cert = $T/tls/server.crt
key = $T/tls/server.key
auth = file
passwd_file = $T/passwd
user =
fail_delay = 0
CONF
for s in $SCENES; do
    printf '[vm %s]\nvnc = 127.0.0.1:%s\nvnc_port = %s\nusers = bench\n' "$s" "${BE[$s]}" "${VG[$s]}"
    printf '[vm %s_off]\nvnc = 127.0.0.1:%s\nvnc_port = %s\nusers = bench\ncontinuous_updates = off\n' \
        "$s" "${BE[$s]}" "${VGOFF[$s]}"
done
} >"$T/vmgate.conf"
{
printf 'global\n    maxconn 100\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1h\n    timeout server 1h\n'
for s in $SCENES; do
    printf 'frontend f_%s\n    bind 127.0.0.1:%s ssl crt %s\n    default_backend b_%s\n' "$s" "${HP[$s]}" "$T/tls/haproxy.pem" "$s"
    printf 'backend b_%s\n    server s 127.0.0.1:%s\n' "$s" "${BE[$s]}"
done
} >"$T/haproxy.cfg"
"$BDIR/vmgate" run -c "$T/vmgate.conf" 2>"$T/vmgate.log" & PIDS+=($!)
haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 & PIDS+=($!)
for s in $SCENES; do wait_port "${BE[$s]}"; wait_port "${HP[$s]}"; wait_port "${VG[$s]}"; done
sleep 2   # the guests boot and switch to mode 13h

target() {   # scene path -> the port the link forwards to
    case $2 in
    direct) echo "${BE[$1]}" ;; haproxy) echo "${HP[$1]}" ;;
    vmgate|vmgate_nofence) echo "${VG[$1]}" ;; vmgate_off) echo "${VGOFF[$1]}" ;;
    esac
}
client() {   # scene path port -> the client's key=value line
    local s=$1 p=$2 lp=$3 a=()
    case $p in
    direct) a=(direct) ;; haproxy) a=(relay) ;; vmgate|vmgate_off|vmgate_nofence) a=(vmgate) ;;
    esac
    a+=(127.0.0.1 "$lp" "$SECS" --warmup 2 --ca "$T/tls/ca.crt" --user bench --pass 'bench pw')
    [ "$p" = vmgate_nofence ] && a+=(--nofence)
    case $s in
    synth) a+=(--rect 64x64) ;;
    *) a+=(--qmp "${QMPS[$s]}") ;;
    esac
    timeout 60 $PY bench/cu_client.py "${a[@]}" 2>>"$T/client.log" || echo "failed=1"
}
kv() { sed -n "s/.*\b$1=\([-0-9.a-z]*\).*/\1/p" <<<"$2"; }

mkdir -p "$OUT"
CSV=$OUT/cu.csv
echo "round,scene,rtt_ms,path,updates_per_s,mbytes_per_s,continuous,age_p50_ms,age_p95_ms,age_max_ms,fresh_p50_ms,fresh_p95_ms,fresh_max_ms,torn,link_max_queue,link_max_inflight" >"$CSV"
say "scenes: $SCENES; paths: $PATHS; RTT $RTTS ms, $RATE Mbit/s, queue $QUEUE B; $ROUNDS round(s) of ${SECS}s"
for rtt in $RTTS; do
    d=$(( rtt / 2 ))
    # link maxima from about when the client's warm-up ends: TCP + TLS + login
    # take ~5 round trips, then 2 s
    settle=$(awk -v r="$rtt" 'BEGIN { printf "%.2f", 2 + 5 * r / 1000 }')
    declare -A LP=()
    LINKS=()
    for s in $SCENES; do
        for p in $PATHS; do
            LP[$s,$p]=$(port)
            $PY bench/delay_relay.py "${LP[$s,$p]}" 127.0.0.1 "$(target "$s" "$p")" "$d" \
                --queue "$QUEUE" --rate "$RATE" --settle "$settle" >"$T/link.$s.$p.$rtt.log" 2>&1 &
            LINKS+=($!)
        done
    done
    for s in $SCENES; do for p in $PATHS; do wait_port "${LP[$s,$p]}"; done; done
    for r in $(seq 1 "$ROUNDS"); do
        # rotate the path order each round
        set -- $PATHS
        for _ in $(seq 2 "$r"); do set -- "${@:2}" "$1"; done
        order="$*"
        for s in $SCENES; do
            say "RTT $rtt ms, round $r/$ROUNDS, $s: $order"
            for p in $order; do
                lg=$T/link.$s.$p.$rtt.log
                before=$(grep -c '^link down' "$lg" || true)
                out=$(client "$s" "$p" "${LP[$s,$p]}")
                for _ in $(seq 1 40); do
                    [ "$(grep -c '^link down' "$lg" || true)" -gt "$before" ] && break
                    sleep 0.1
                done
                ln=$(grep '^link down' "$lg" | tail -1)
                printf '%s,%s,%s,%s' "$r" "$s" "$rtt" "$p" >>"$CSV"
                for k in updates_per_s mbytes_per_s continuous age_p50_ms age_p95_ms age_max_ms fresh_p50_ms fresh_p95_ms fresh_max_ms torn; do
                    printf ',%s' "$(kv $k "$out")" >>"$CSV"
                done
                printf ',%s,%s\n' "$(kv max_queue "$ln")" "$(kv max_inflight "$ln")" >>"$CSV"
                [ -n "$(kv failed "$out")" ] && say "  $s $p: client failed (see $T/client.log): $(tail -2 "$T/client.log")"
            done
        done
    done
    for p in "${LINKS[@]}"; do kill "$p" 2>/dev/null || true; done
    LINKS=()
done

# ---------------------------------------------------------------- table
$PY - "$CSV" "$OUT/cu.md" "$RATE" "$QUEUE" "$ROUNDS" "$SECS" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
rate, queue, rounds, secs = float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
def med(vals):
    try:
        v = [float(x) for x in vals if x not in ("", "nan")]
    except ValueError:
        return None
    return statistics.median(v) if v else None
def fmt(x, nd=1):
    if x is None: return "–"
    return ("%%.%df" % nd) % x
groups = {}
for r in rows:
    groups.setdefault((r["scene"], int(r["rtt_ms"])), {}).setdefault(r["path"], []).append(r)
title = {"direct": "direct to the VNC server", "haproxy": "haproxy (TLS relay)",
         "vmgate_off": "vmgate, continuous_updates = off", "vmgate": "**vmgate** (continuous updates)",
         "vmgate_nofence": "vmgate, continuous updates, viewer without fences (paced by the kernel's queue)"}
scene_t = {"small": "small changes (QEMU guest, 640×8 px at 100 Hz)",
           "large": "large redraws (QEMU guest, 640×300 px at 50 Hz, ~760 KB/frame Raw)",
           "synth": "synthetic: always-dirty 64×64 (`vncbench serve`)"}
out = []
out.append("| scene | RTT | path | updates/s | MB/s | age on arrival p50 / p95 / max ms | age before the next p50 / p95 / max ms | link queue max KiB | vs relay: updates/s, MB/s |")
out.append("|---|---|---|---|---|---|---|---|---|")
targets = []
for (scene, rtt) in sorted(groups, key=lambda k: (["small", "large", "synth"].index(k[0]), k[1])):
    g = groups[(scene, rtt)]
    m = {p: {k: med([r[k] for r in rs]) for k in rs[0]} for p, rs in g.items()}
    rel = m.get("haproxy", {})
    for p in ["direct", "haproxy", "vmgate_off", "vmgate", "vmgate_nofence"]:
        if p not in m: continue
        x = m[p]
        age = "–" if x["age_p50_ms"] is None else "%s / %s / %s" % (fmt(x["age_p50_ms"], 0), fmt(x["age_p95_ms"], 0), fmt(x["age_max_ms"], 0))
        fresh = "–" if x.get("fresh_p95_ms") is None else "%s / %s / %s" % (fmt(x["fresh_p50_ms"], 0), fmt(x["fresh_p95_ms"], 0), fmt(x["fresh_max_ms"], 0))
        ratio = "–"
        if rel.get("updates_per_s") and x["updates_per_s"] is not None:
            ratio = "%.2f×, %.2f×" % (x["updates_per_s"] / rel["updates_per_s"], x["mbytes_per_s"] / rel["mbytes_per_s"])
        out.append("| %s | %d ms | %s | %s | %s | %s | %s | %s | %s |" % (
            scene, rtt, title[p], fmt(x["updates_per_s"]), fmt(x["mbytes_per_s"], 2), fresh, age,
            fmt(None if x["link_max_queue"] is None else x["link_max_queue"] / 1024, 0), ratio))
    v, h = m.get("vmgate"), m.get("haproxy")
    if v and h and h["updates_per_s"]:
        if scene == "small" or scene == "synth":
            r = v["updates_per_s"] / h["updates_per_s"]
            targets.append("- %s, RTT %d ms: updates/s vmgate %.1f vs relay %.1f = %.2f× (target ≥ 3×) — **%s**" % (
                scene, rtt, v["updates_per_s"], h["updates_per_s"], r, "met" if r >= 3 else "not met"))
        if scene == "large":
            # one frame: the bytes of a median update at the link's rate
            frame_s = (v["mbytes_per_s"] * 1e6 / v["updates_per_s"]) * 8 / (rate * 1e6) if v["updates_per_s"] else 0
            lim = 2 * rtt + frame_s * 1000
            worst = max(float(r["fresh_max_ms"]) for r in g["vmgate"] if r["fresh_max_ms"] not in ("", "nan"))
            tp = v["mbytes_per_s"] / h["mbytes_per_s"]
            targets.append("- large, RTT %d ms: age of the shown frame on arrival: max %.0f ms (worst round %.0f), p95 %.0f, vs limit 2 RTT + one frame (%.0f ms) = %.0f ms — **%s**; relay: max %.0f, p95 %.0f ms. Before the next frame arrives the shown one is %.0f ms old at p95 (relay %.0f)" % (
                rtt, v["fresh_max_ms"], worst, v["fresh_p95_ms"], frame_s * 1000, lim, "met" if worst <= lim else "not met",
                h["fresh_max_ms"], h["fresh_p95_ms"], v["age_p95_ms"], h["age_p95_ms"]))
            targets.append("- large, RTT %d ms: throughput vmgate %.2f MB/s vs relay %.2f MB/s = %.2f× (target ≥ 0.90×) — **%s**" % (
                rtt, v["mbytes_per_s"], h["mbytes_per_s"], tp, "met" if tp >= 0.9 else "not met"))
head = ("Link: user-space (bench/delay_relay.py), RTT as shown, %g Mbit/s each way, %d KiB queue at its port; "
        "client behaves like TigerVNC 1.12, Raw 32 bpp; %s round(s) of %s s per path, medians. "
        "Age (guest TSC stamps read back from the pixels): on arrival = how old a frame is when the viewer has it whole; "
        "before the next = how old the shown frame is when the next one arrives (the oldest the screen gets). "
        "Link queue: the most bytes waiting at the link's port in the VM→viewer direction." % (rate, queue // 1024, rounds, secs))
txt = head + "\n\n" + "\n".join(out) + "\n\nTargets (issue 16):\n\n" + "\n".join(targets) + "\n"
open(sys.argv[2], "w").write(txt)
print(txt)
EOF
grep -h "continuous updates" "$T/vmgate.log" | sed 's/^.*vm=\([^ ]*\) .*: continuous/# \1: continuous/' | sort -u
