#!/usr/bin/env bash
# bench/run.sh — `make bench`: vmgate against the direct path, stunnel, haproxy
# and websockify, side by side, on loopback, in one run.
#
# Starts everything itself (Xvnc 1920x1080x24 as the backend, vmgate, stunnel,
# haproxy, websockify, and a reference OpenSSL RFB server for the "direct TLS"
# figure), runs every workload on every path BENCH_RUNS times (interleaved),
# measures idle memory per session on fresh server processes, and writes
#   bench/results/results.csv   raw results (run,path,workload,param,metric,value)
#   bench/results/summary.csv   median/min/max per figure
#   bench/results/latest.md     the table for the README (machine, targets)
#   bench/results/bench.png     gnuplot bar charts
# Everything it starts is stopped on exit.  Ratios, not absolute pass/fail.
#
# Environment (defaults in brackets):
#   BENCH_RUNS [3]            rounds of every workload
#   BENCH_SECONDS [5]         bulk and scale window per run
#   BENCH_LOGIN_SECONDS [3]   login and handshake window per run
#   BENCH_RTT_COUNT [10000]   round trips per rtt run (plus 1000 warm-up)
#   BENCH_SCALE ["10 100"]    concurrent bulk sessions (1 is the bulk workload)
#   BENCH_IDLE ["1000 10000"] idle sessions (capped by the fd limit)
#   BENCH_IDLE_WS [200]       idle sessions for websockify (a process each; 0 = skip)
#   BENCH_PIN [1]             pin client, server and Xvnc to CPU 0 for rtt
#   BENCH_VMGATE_PROCESSES    vmgate's `processes` (default: the number of CPUs,
#                             as haproxy starts one thread per CPU)
#   BENCH_PATHS               subset of: direct tls_direct xvnc_tls vmgate stunnel haproxy websockify
#                             vmgate_web (vmgate's browser console: wss://…/vnc/bench, RFB
#                             VeNCrypt Plain inside, against websockify with --cert)
#   BENCH_WORKLOADS           subset of: bulk rtt login hs scale storm idle (default: all)
#   BENCH_PORT_BASE [27900]   eight consecutive loopback ports from here
#   BENCH_DISPLAY             X display number for Xvnc (default: first free from 40)
#   BENCH_OUT [bench/results] where the results go
#   BUILD [build]             build directory (vmgate, vncbench, scratch files)
set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
case $BUILD in /*) BDIR=$BUILD ;; *) BDIR=$ROOT/$BUILD ;; esac
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-5}
LSECS=${BENCH_LOGIN_SECONDS:-3}
RTT_COUNT=${BENCH_RTT_COUNT:-10000}
SCALE_K=${BENCH_SCALE:-"10 100"}
IDLE_N=${BENCH_IDLE:-"1000 10000"}
IDLE_WS_N=${BENCH_IDLE_WS:-200}
PIN=${BENCH_PIN:-1}
PATHS=${BENCH_PATHS:-"direct tls_direct xvnc_tls vmgate stunnel haproxy websockify vmgate_web"}
PB=${BENCH_PORT_BASE:-27900}
WORKLOADS=${BENCH_WORKLOADS:-"bulk rtt login hs scale storm idle"}
want() { [[ " $WORKLOADS " == *" $1 "* ]]; }
OUT=${BENCH_OUT:-$ROOT/bench/results}
WORK=$BDIR/bench-work
LOG=$WORK/logs
VMGATE=$BDIR/vmgate
VB=$BDIR/bench/vncbench
PEERS="stunnel haproxy websockify"

P_XVNC=$PB P_VMGATE=$((PB + 1)) P_STUNNEL=$((PB + 2)) P_HAPROXY=$((PB + 3))
P_WSFY=$((PB + 4)) P_TLSREF=$((PB + 5)) P_IDLEBE=$((PB + 6)) P_WEB=$((PB + 7))
BE_PORT=$P_XVNC   # the backend the relays forward to (Xvnc, or the idle backend)

T_START=$(date +%s)
say() { printf '[bench %4ss] %s\n' $(( $(date +%s) - T_START )) "$*" >&2; }
die() { say "error: $*"; exit 1; }
has() { [[ " $PATHS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- packages
need_pkgs=()
command -v Xvnc >/dev/null || need_pkgs+=(tigervnc-standalone-server)
command -v stunnel4 >/dev/null || need_pkgs+=(stunnel4)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need_pkgs+=(haproxy)
command -v websockify >/dev/null || need_pkgs+=(websockify)
command -v gnuplot >/dev/null || need_pkgs+=(gnuplot-nox)
command -v gcc >/dev/null || need_pkgs+=(gcc)
command -v ss >/dev/null || need_pkgs+=(iproute2)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
[ -f /usr/include/openssl/ssl.h ] || need_pkgs+=(libssl-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing ${need_pkgs[*]}"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need_pkgs[@]}" >/dev/null || die "apt-get install ${need_pkgs[*]} failed"
fi
PATH=$PATH:/usr/sbin:/sbin

# ---------------------------------------------------------------- build
[ -x "$VMGATE" ] || make --no-print-directory BUILD="$BUILD" all >&2 || die "cannot build vmgate"
mkdir -p "$BDIR/bench" "$OUT"
gcc -O2 -std=gnu17 -Wall -Wextra -pthread -o "$VB" bench/vncbench.c -lssl -lcrypto \
    || die "cannot build vncbench"

# ---------------------------------------------------------------- limits, machine
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
# a relay holds two descriptors per session (viewer + VM)
IDLE_MAX=$(( (NOFILE - 64) / 2 ))
NCPU=$(nproc)
VG_PROCS=${BENCH_VMGATE_PROCESSES:-$NCPU}
[ "$VG_PROCS" -gt 64 ] && VG_PROCS=64   # the most `processes` takes (CFG_PROCESSES_MAX)
# vmgate's network processes each hold their own descriptors; the kernel
# does not split the sessions exactly evenly, so keep a quarter in reserve
VG_IDLE_MAX=$(( VG_PROCS == 1 ? IDLE_MAX : IDLE_MAX * VG_PROCS * 3 / 4 ))
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
KERNEL=$(uname -r)
MEM_GB=$(awk '/^MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)
OSSL=$(openssl version 2>/dev/null | awk '{print $2}')
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
VERSIONS="stunnel4 $(ver stunnel4), haproxy $(ver haproxy), websockify $(ver websockify), TigerVNC Xvnc $(ver tigervnc-standalone-server), OpenSSL $OSSL"
say "machine: $NCPU x $CPU_MODEL, $MEM_GB GB, kernel $KERNEL; fd limit $NOFILE"

# ---------------------------------------------------------------- scratch
rm -rf "$WORK"
mkdir -p "$WORK" "$LOG"
RAW=$WORK/results.csv
: > "$RAW"

declare -A PID=()
CLIENT_PIDS=()
cleanup() {
    trap - EXIT INT TERM
    local p
    for p in "${CLIENT_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PID[@]}"; do kill "$p" 2>/dev/null; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for p in "${PID[@]}" "${CLIENT_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.3
    done
    for p in "${PID[@]}" "${CLIENT_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT TERM

for p in $P_XVNC $P_VMGATE $P_STUNNEL $P_HAPROXY $P_WSFY $P_TLSREF $P_IDLEBE $P_WEB; do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
        die "port $p is in use; set BENCH_PORT_BASE to a free range"
    fi
done
DISP=${BENCH_DISPLAY:-}
if [ -z "$DISP" ]; then
    for d in $(seq 40 99); do
        if [ ! -e /tmp/.X$d-lock ] && [ ! -e /tmp/.X11-unix/X$d ]; then DISP=$d; break; fi
    done
fi
[ -n "$DISP" ] || die "no free X display number"

cd "$WORK"
"$VMGATE" certs init --dir tls --name localhost,127.0.0.1 >"$LOG/certs.log" 2>&1 \
    || die "vmgate certs init failed (see $LOG/certs.log)"
cat tls/server.crt tls/server.key > tls/haproxy.pem
BENCH_PASS=bench-$RANDOM$RANDOM
IDLE_PASS=idle-$RANDOM$RANDOM
echo "$BENCH_PASS" | "$VMGATE" passwd passwd bench >"$LOG/passwd.log" 2>&1 || die "vmgate passwd failed"
# The idle sessions log in as a user with a cheap hash (sha512crypt): the
# idle figure is about memory, and 10,000 yescrypt checks would take minutes.
echo "idle:$(openssl passwd -6 "$IDLE_PASS")" >> passwd

HAP_MAXCONN=$(( (NOFILE - 40) / 2 ))
[ $HAP_MAXCONN -gt 30000 ] && HAP_MAXCONN=30000
write_configs() {   # for the current BE_PORT
cat > vmgate.conf <<EOF
[gateway]
address = 127.0.0.1
cert = tls/server.crt
key = tls/server.key
auth = file
passwd_file = passwd
user =
processes = $VG_PROCS
fail_delay = 100ms
login_timeout = 60s
max_unauth = 20000
max_unauth_per_source = 20000
web_port = $P_WEB

[vm bench]
vnc = 127.0.0.1:$BE_PORT
vnc_port = $P_VMGATE
users = bench idle
EOF

cat > stunnel.conf <<EOF
foreground = yes
pid =
debug = 3
[vnc]
accept = 127.0.0.1:$P_STUNNEL
connect = 127.0.0.1:$BE_PORT
cert = $WORK/tls/server.crt
key = $WORK/tls/server.key
EOF

cat > haproxy.cfg <<EOF
global
    maxconn $HAP_MAXCONN
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend vnc
    bind 127.0.0.1:$P_HAPROXY ssl crt $WORK/tls/haproxy.pem
    default_backend xvnc
backend xvnc
    server xvnc 127.0.0.1:$BE_PORT
EOF
}

# ---------------------------------------------------------------- servers
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
wait_port() {   # name port
    local i
    for i in $(seq 1 100); do
        listening "$2" && return 0
        kill -0 "${PID[$1]}" 2>/dev/null || die "$1 exited at start (see $LOG/$1.log)"
        sleep 0.1
    done
    die "$1 did not listen on port $2 (see $LOG/$1.log)"
}
stop_server() {
    local p=${PID[$1]:-}
    [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    unset "PID[$1]"
}
start_server() {
    case $1 in
    xvnc)
        Xvnc ":$DISP" -geometry 1920x1080 -depth 24 -SecurityTypes None,X509None \
            -X509Cert tls/server.crt -X509Key tls/server.key -rfbport $P_XVNC -localhost \
            -AlwaysShared -UseBlacklist=0 -desktop bench -nolisten tcp >>"$LOG/xvnc.log" 2>&1 &
        PID[xvnc]=$!; wait_port xvnc $P_XVNC ;;
    idle_backend)
        "$VB" serve --host 127.0.0.1 --port $P_IDLEBE >>"$LOG/idle_backend.log" 2>&1 &
        PID[idle_backend]=$!; wait_port idle_backend $P_IDLEBE ;;
    vmgate)
        write_configs
        "$VMGATE" run -c vmgate.conf >>"$LOG/vmgate.log" 2>&1 &
        PID[vmgate]=$!; wait_port vmgate $P_VMGATE ;;
    stunnel)
        write_configs
        stunnel4 stunnel.conf >>"$LOG/stunnel.log" 2>&1 &
        PID[stunnel]=$!; wait_port stunnel $P_STUNNEL ;;
    haproxy)
        write_configs
        haproxy -db -f haproxy.cfg >>"$LOG/haproxy.log" 2>&1 &
        PID[haproxy]=$!; wait_port haproxy $P_HAPROXY ;;
    websockify)
        websockify --cert tls/server.crt --key tls/server.key --ssl-only \
            127.0.0.1:$P_WSFY 127.0.0.1:$BE_PORT >>"$LOG/websockify.log" 2>&1 &
        PID[websockify]=$!; wait_port websockify $P_WSFY ;;
    tls_direct)
        "$VB" serve --host 127.0.0.1 --port $P_TLSREF --cert tls/server.crt \
            --key tls/server.key >>"$LOG/tls_direct.log" 2>&1 &
        PID[tls_direct]=$!; wait_port tls_direct $P_TLSREF ;;
    esac
}
server_of() {   # path label -> the server process that does the work
    case $1 in direct|xvnc_tls) echo xvnc ;; vmgate_web) echo vmgate ;; *) echo "$1" ;; esac
}

start_server xvnc
for s in tls_direct vmgate stunnel haproxy websockify; do
    { has "$s" || { [ "$s" = vmgate ] && has vmgate_web; }; } && start_server "$s"
done
say "servers up: Xvnc :$DISP on $P_XVNC; $(for k in "${!PID[@]}"; do printf '%s=%s ' "$k" "${PID[$k]}"; done)"

# ---------------------------------------------------------------- client
client_args() {   # path label -> vncbench options
    case $1 in
    direct)     echo "--path direct --port $P_XVNC" ;;
    xvnc_tls)   echo "--path xtls --port $P_XVNC" ;;
    tls_direct) echo "--path tls --port $P_TLSREF" ;;
    vmgate)     echo "--path vmgate --port $P_VMGATE --user bench --pass $BENCH_PASS" ;;
    stunnel)    echo "--path tls --port $P_STUNNEL" ;;
    haproxy)    echo "--path tls --port $P_HAPROXY" ;;
    websockify) echo "--path ws --port $P_WSFY" ;;
    vmgate_web) echo "--path web --port $P_WEB --user bench --pass $BENCH_PASS" ;;
    esac
}
RUN=0
bench() {   # path label, then vncbench arguments; appends to the raw CSV
    local p=$1; shift
    local srv; srv=$(server_of "$p")
    local be=""     # the relays' backend: its CPU is part of the path's budget
    [ "$srv" != xvnc ] && [ "$p" != tls_direct ] && be="--backend-pids ${PID[xvnc]}"
    local limit=$(( ${SECS%.*} * 4 + ${LSECS%.*} * 4 + 120 ))
    local out
    out=$(timeout -k 5 $limit $TASKSET "$VB" --quiet --label "$p" $(client_args "$p") \
          --pids "${PID[$srv]}" $be "$@" 2>>"$LOG/client.log")
    local rc=$?
    [ $rc = 0 ] || say "  $p $*: vncbench exit $rc (see $LOG/client.log)"
    [ -n "$out" ] && printf '%s\n' "$out" | sed "s/^/$RUN,/" >> "$RAW"
    return 0
}
pin_all() {   # cpu list
    local p
    for p in "${PID[@]}"; do
        taskset -a -p -c "$1" "$p" >/dev/null 2>&1
        for c in $(pgrep -P "$p"); do taskset -a -p -c "$1" "$c" >/dev/null 2>&1; done
    done
}
rotate() {   # print the words of $2 rotated left by $1
    local -a a=($2); local n=${#a[@]} i
    for ((i = 0; i < n; i++)); do printf '%s ' "${a[$(( (i + $1) % n ))]}"; done
}
TLS_PATHS=""
for p in $PATHS; do [ "$p" = direct ] || TLS_PATHS="$TLS_PATHS $p"; done
SCALE_PATHS=""
for p in $PATHS; do [ "$p" = xvnc_tls ] || SCALE_PATHS="$SCALE_PATHS $p"; done

# check every path once before measuring
TASKSET=
for p in $PATHS; do
    if ! timeout 30 "$VB" --label "$p" $(client_args "$p") --count 10 --warmup 0 rtt \
        >/dev/null 2>>"$LOG/check.log"; then
        tail -3 "$LOG/check.log" >&2
        die "path $p does not work"
    fi
done
grep '^#' "$LOG/check.log" | sed 's/^# /  /' >&2

# ---------------------------------------------------------------- rounds
for RUN in $(seq 1 "$RUNS"); do
    order=$(rotate $((RUN - 1)) "$PATHS")
    TASKSET=
    if want bulk; then
        say "round $RUN/$RUNS: bulk (${SECS}s per path)"
        for p in $order; do bench "$p" --seconds "$SECS" bulk; done
    fi

    if want rtt; then
        say "round $RUN/$RUNS: rtt ($RTT_COUNT round trips per path$([ "$PIN" = 1 ] && echo ', pinned to CPU 0'))"
        if [ "$PIN" = 1 ]; then pin_all 0; TASKSET="taskset -c 0"; fi
        for p in $order; do bench "$p" --count "$RTT_COUNT" rtt; done
        if [ "$PIN" = 1 ]; then pin_all "0-$((NCPU - 1))"; TASKSET=; fi
    fi

    if want login; then
        say "round $RUN/$RUNS: login (${LSECS}s per path, 4 client threads)"
        for p in $order; do bench "$p" --seconds "$LSECS" --conc 4 login; done
    fi
    if want hs; then
        say "round $RUN/$RUNS: TLS handshakes (${LSECS}s per path, 4 client threads)"
        for p in $order; do
            [ "$p" = direct ] && continue
            bench "$p" --seconds "$LSECS" --conc 4 hs
        done
    fi

    want scale || SCALE_K=""
    for k in $SCALE_K; do
        say "round $RUN/$RUNS: scale $k sessions (${SECS}s per path)"
        for p in $(rotate $((RUN - 1)) "$SCALE_PATHS"); do
            bench "$p" --seconds "$SECS" --timeout 60 scale "$k"
        done
    done

    if has vmgate && want storm; then
        say "round $RUN/$RUNS: vmgate round trips during a login storm"
        # 4999 round trips: a count of its own, so the rows can be renamed
        bench vmgate --count 4999 rtt
        sed -i "s/^$RUN,vmgate,rtt,4999,/$RUN,vmgate,storm_rtt,idle,/" "$RAW"
        timeout 60 "$VB" --quiet --label vmgate $(client_args vmgate) --seconds 30 --conc 4 \
            login > "$WORK/storm_login.csv" 2>>"$LOG/client.log" &
        storm=$!; CLIENT_PIDS+=($storm)
        sleep 1
        bench vmgate --count 4999 rtt
        sed -i "s/^$RUN,vmgate,rtt,4999,/$RUN,vmgate,storm_rtt,storm,/" "$RAW"
        kill "$storm" 2>/dev/null; wait "$storm" 2>/dev/null
    fi
done

# ---------------------------------------------------------------- idle memory
mem_tree() {   # pid -> "rss_kib pss_kib" summed over the process and its descendants
    local root=$1
    ps -e -o pid=,ppid= | awk -v r="$root" '
        { par[$1] = $2; pids[NR] = $1 }
        END { for (i in pids) { p = pids[i]; q = p
                  while (q != "" && q != 0 && q != r) q = par[q]
                  if (q == r) print p } }' |
    while read -r p; do
        rss=$(awk '/^VmRSS:/ {print $2}' /proc/$p/status 2>/dev/null)
        pss=$(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup 2>/dev/null)
        echo "${rss:-0} ${pss:-0}"
    done | awk '{r += $1; s += $2} END {printf "%d %d\n", r, s}'
}
idle_one() {   # path N
    local s=$1 n=$2 args srv
    srv=$(server_of "$s")
    args=$(client_args "$s")
    [ "$s" = vmgate ] && args="--path vmgate --port $P_VMGATE --user idle --pass $IDLE_PASS"
    [ "$s" = vmgate_web ] && args="--path web --port $P_WEB --user idle --pass $IDLE_PASS"
    BE_PORT=$P_IDLEBE
    stop_server "$srv"; start_server "$srv"
    # warm-up: 10 sessions opened and closed, then the baseline
    timeout 60 "$VB" --quiet --label "$s" $args --conc 2 --hold 0 idle 10 >/dev/null 2>>"$LOG/client.log"
    sleep 1
    local before; before=$(mem_tree "${PID[$srv]}")
    local f=$WORK/idle_${s}_$n.csv
    "$VB" --label "$s" $args --conc 8 --timeout 60 --hold 600 idle "$n" > "$f" 2>>"$LOG/client.log" &
    local c=$!; CLIENT_PIDS+=($c)
    local t=0
    until grep -q ',opened,' "$f" 2>/dev/null; do
        kill -0 $c 2>/dev/null || break
        sleep 0.5; t=$((t + 1))
        [ $t -gt 1200 ] && { say "  $s idle $n: no answer in 600 s"; break; }
    done
    sleep 2
    local after; after=$(mem_tree "${PID[$srv]}")
    kill -USR1 $c 2>/dev/null
    wait $c 2>/dev/null
    local opened; opened=$(awk -F, '$4 == "opened" {print $5}' "$f")
    opened=${opened:-0}
    sed "s/^/1,/" "$f" >> "$RAW"
    read -r rb pb <<<"$before"; read -r ra pa <<<"$after"
    if [ "$opened" -gt 0 ]; then
        awk -v s="$s" -v n="$n" -v rb="$rb" -v ra="$ra" -v pb="$pb" -v pa="$pa" -v o="$opened" \
            'BEGIN { printf "1,%s,idle,%s,rss_kib_per_session,%.2f\n", s, n, (ra - rb) / o
                     printf "1,%s,idle,%s,pss_kib_per_session,%.2f\n", s, n, (pa - pb) / o
                     printf "1,%s,idle,%s,rss_before_kib,%d\n1,%s,idle,%s,rss_after_kib,%d\n", s, n, rb, s, n, ra }' >> "$RAW"
    fi
    say "  $s: $n sessions: $(awk -F, '{printf "%s=%s ", $4, $5}' "$f")rss ${rb} -> ${ra} KiB"
    BE_PORT=$P_XVNC
    stop_server "$srv"; start_server "$srv"
}
# Xvnc cannot hold more than about 1,000 viewers (TigerVNC writes with
# select(), and aborts on a descriptor past FD_SETSIZE), so the relays
# forward the idle sessions to `vncbench serve` (plain RFB, a thread per
# connection).  The relay's memory per session does not depend on it.
want idle || { IDLE_N=""; IDLE_WS_N=0; }
[ -n "$IDLE_N" ] && start_server idle_backend
# Each requested N runs on every relay that can hold it; a single-process
# relay is capped by the fd limit, and then vmgate also runs at that cap so
# the row has a comparison.  IDLE_LIST: every N measured, ascending.
declare -A IDLE_RUNS=()
for n in $IDLE_N; do
    for s in vmgate haproxy stunnel; do
        has "$s" || continue
        m=$n cap=$IDLE_MAX
        [ "$s" = vmgate ] && cap=$VG_IDLE_MAX
        if [ "$m" -gt "$cap" ]; then
            say "idle: $s cannot hold $n sessions with an fd limit of $NOFILE per process: using $cap"
            m=$cap
        fi
        IDLE_RUNS[$s]="${IDLE_RUNS[$s]:-} $m"
        [ "$m" -lt "$n" ] && has vmgate && [ "$s" != vmgate ] && IDLE_RUNS[vmgate]="${IDLE_RUNS[vmgate]:-} $m"
    done
done
IDLE_LIST=$(for s in "${!IDLE_RUNS[@]}"; do printf '%s\n' ${IDLE_RUNS[$s]}; done | sort -n -u | xargs)
for n in $IDLE_LIST; do
    for s in vmgate haproxy stunnel; do
        has "$s" || continue
        [[ " ${IDLE_RUNS[$s]:-} " == *" $n "* ]] || continue
        say "idle: $s, $n sessions"
        idle_one "$s" "$n"
    done
done
if has websockify && [ "$IDLE_WS_N" -gt 0 ]; then
    say "idle: websockify, $IDLE_WS_N sessions (a process per session)"
    idle_one websockify "$IDLE_WS_N"
fi
if has vmgate_web && [ "$IDLE_WS_N" -gt 0 ]; then
    say "idle: vmgate's web path, $IDLE_WS_N sessions (websockify's count)"
    idle_one vmgate_web "$IDLE_WS_N"
fi

# ---------------------------------------------------------------- summary
# Derived per run: the CPU budget of a bulk/scale path (server + backend +
# client seconds per GB) and the MB/s that budget allows on all cores at
# 100%; handshakes per server CPU-second (one core's TLS capacity).
# vncbench writes client_cpu_s_per_gb whenever it writes either of the other
# two, so two parts are the client and at least one program it talked to.
awk -F, -v ncpu="$NCPU" '
    ($3 == "bulk" || $3 == "scale") &&
    ($5 == "cpu_s_per_gb" || $5 == "backend_cpu_s_per_gb" || $5 == "client_cpu_s_per_gb") {
        k = $1 "," $2 "," $3 "," $4
        sum[k] += $6; parts[k]++
    }
    $3 == "hs" && $5 == "server_cpu_us_per" && $6 > 0 {
        printf "%s,%s,%s,%s,hs_per_cpu_s,%.6g\n", $1, $2, $3, $4, 1e6 / $6
    }
    END {
        for (k in sum) if (parts[k] >= 2 && sum[k] > 0) {
            printf "%s,all_cpu_s_per_gb,%.6g\n", k, sum[k]
            printf "%s,ceiling_mbps,%.6g\n", k, ncpu * 1000 / sum[k]
        }
    }' "$RAW" > "$WORK/derived.csv"
cat "$WORK/derived.csv" >> "$RAW"
{ echo "run,path,workload,param,metric,value"; cat "$RAW"; } > "$OUT/results.csv"
awk -F, '
    { k = $2 "," $3 "," $4 "," $5; n[k]++; v[k, n[k]] = $6 + 0; if (!(k in seen)) { seen[k] = 1; order[++m] = k } }
    END {
        print "path,workload,param,metric,n,median,min,max"
        for (i = 1; i <= m; i++) {
            k = order[i]; c = n[k]
            for (a = 1; a <= c; a++) x[a] = v[k, a]
            for (a = 2; a <= c; a++) { t = x[a]; b = a - 1; while (b > 0 && x[b] > t) { x[b + 1] = x[b]; b-- } x[b + 1] = t }
            med = (c % 2) ? x[(c + 1) / 2] : (x[c / 2] + x[c / 2 + 1]) / 2
            printf "%s,%d,%.6g,%.6g,%.6g\n", k, c, med, x[1], x[c]
        }
    }' "$RAW" > "$OUT/summary.csv"

declare -A MED=() MIN=() MAX=()
while IFS=, read -r p w pa m n med mi ma; do
    [ "$p" = path ] && continue
    MED[$p,$w,$pa,$m]=$med; MIN[$p,$w,$pa,$m]=$mi; MAX[$p,$w,$pa,$m]=$ma
done < "$OUT/summary.csv"

num() {   # format a number by magnitude
    awk -v x="$1" 'BEGIN { a = x < 0 ? -x : x
        if (a >= 100) printf "%.0f", x; else if (a >= 10) printf "%.1f", x; else printf "%.2f", x }'
}
scaled() { awk -v x="$1" -v d="$2" 'BEGIN { printf "%.6g", x / d }'; }
cell() {   # key divisor -> "median [min–max]"
    local k=$1 d=${2:-1}
    [ -n "${MED[$k]:-}" ] || { printf -- '–'; return; }
    local md mi ma
    md=$(num "$(scaled "${MED[$k]}" "$d")")
    mi=$(num "$(scaled "${MIN[$k]}" "$d")")
    ma=$(num "$(scaled "${MAX[$k]}" "$d")")
    if [ "$mi" = "$ma" ]; then printf '%s' "$md"; else printf '%s [%s–%s]' "$md" "$mi" "$ma"; fi
}
best_peer() {   # workload param metric higher|lower -> "value path"
    local w=$1 pa=$2 m=$3 dir=$4 bv="" bp="" p v
    for p in $PEERS; do
        v=${MED[$p,$w,$pa,$m]:-}
        [ -n "$v" ] || continue
        if [ -z "$bv" ] || awk -v a="$v" -v b="$bv" -v d="$dir" \
            'BEGIN { exit !((d == "higher") ? (a > b) : (a < b)) }'; then
            bv=$v; bp=$p
        fi
    done
    echo "$bv $bp"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "" || b == "") print "–"; else printf "%.2f×", a / b }'; }

COLS=""
for p in direct tls_direct xvnc_tls vmgate stunnel haproxy websockify vmgate_web; do has "$p" && COLS="$COLS $p"; done
declare -A TITLE=([direct]="direct (plain)" [tls_direct]="direct TLS" [xvnc_tls]="Xvnc TLS"
    [vmgate]="**vmgate**" [stunnel]=stunnel [haproxy]=haproxy [websockify]=websockify
    [vmgate_web]="**vmgate web**")
last_idle=${IDLE_LIST##* }; last_idle=${last_idle:-0}
ROWS=(
    "Bulk MB/s (1 session)|bulk|1|mbps|higher|1"
    "Bulk frames/s|bulk|1|fps|higher|1"
    "Bulk server CPU s per GB|bulk|1|cpu_s_per_gb|lower|1"
    "Bulk backend (Xvnc behind a relay) CPU s per GB|bulk|1|backend_cpu_s_per_gb|lower|1"
    "Bulk client CPU s per GB|bulk|1|client_cpu_s_per_gb|lower|1"
    "Bulk all programs CPU s per GB|bulk|1|all_cpu_s_per_gb|lower|1"
    "Bulk ceiling: MB/s that budget allows on $NCPU cores at 100%|bulk|1|ceiling_mbps|higher|1"
    "Bulk: all CPUs busy %|bulk|1|busy_pct|higher|1"
    "Round trip median µs|rtt|$RTT_COUNT|median_us|lower|1"
    "Round trip p99 µs|rtt|$RTT_COUNT|p99_us|lower|1"
    "Round trip p99.9 µs|rtt|$RTT_COUNT|p999_us|lower|1"
    "Login sessions/s (connect → ServerInit)|login|4|per_s|higher|1"
    "Login: TLS part, median ms|login|4|tls_med_us|lower|1000"
    "Login: auth part (creds → SecurityResult), median ms|login|4|auth_med_us|lower|1000"
    "TLS handshakes/s|hs|4|per_s|higher|1"
    "Server CPU µs per handshake|hs|4|server_cpu_us_per|lower|1"
    "TLS handshakes per server CPU-second|hs|4|hs_per_cpu_s|higher|1"
)
for k in $SCALE_K; do
    ROWS+=("Scale: $k sessions, aggregate MB/s|scale|$k|mbps|higher|1")
    ROWS+=("Scale: $k sessions, server CPU s per GB|scale|$k|cpu_s_per_gb|lower|1")
done
for n in $IDLE_LIST; do
    ROWS+=("Idle: $n sessions, KiB RSS per session|idle|$n|rss_kib_per_session|lower|1")
    ROWS+=("Idle: $n sessions held|idle|$n|alive|higher|1")
done
if [ "$IDLE_WS_N" -gt 0 ] && { has websockify || has vmgate_web; }; then
    [[ " $IDLE_LIST " == *" $IDLE_WS_N "* ]] ||
        ROWS+=("Idle: $IDLE_WS_N sessions, KiB RSS per session|idle|$IDLE_WS_N|rss_kib_per_session|lower|1")
    ROWS+=("Idle: $IDLE_WS_N sessions, KiB PSS per session|idle|$IDLE_WS_N|pss_kib_per_session|lower|1")
fi

TABLE=$WORK/table.md
{
    printf '| figure |'; for p in $COLS; do printf ' %s |' "${TITLE[$p]}"; done; printf ' vmgate ÷ best peer |\n'
    printf '|---|'; for p in $COLS; do printf -- '---|'; done; printf -- '---|\n'
    for r in "${ROWS[@]}"; do
        IFS='|' read -r title w pa m dir div <<<"$r"
        any=
        for p in $COLS; do [ -n "${MED[$p,$w,$pa,$m]:-}" ] && any=1; done
        [ -n "$any" ] || continue
        printf '| %s |' "$title"
        for p in $COLS; do printf ' %s |' "$(cell "$p,$w,$pa,$m" "$div")"; done
        read -r bv bp <<<"$(best_peer "$w" "$pa" "$m" "$dir")"
        if [ -n "${bv:-}" ] && [ -n "${MED[vmgate,$w,$pa,$m]:-}" ]; then
            printf ' %s (%s) |\n' "$(ratio "${MED[vmgate,$w,$pa,$m]}" "$bv")" "$bp"
        else
            printf ' – |\n'
        fi
    done
} > "$TABLE"

# ---------------------------------------------------------------- targets
tline() { printf -- '- %s: %s — **%s**\n' "$1" "$2" "$3"; }
verdict() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { if (a == "" || b == "") { print "not measured"; exit }
    ok = (op == ">=") ? (a >= b) : (a <= b); print ok ? "met" : "not met" }'; }
# budget TARGET_MBPS -> "; CPU budget: ..." — what the relay may spend per GB
# for the vmgate path to reach TARGET_MBPS with every core busy, given what
# Xvnc and the client spend on the same bytes in this run.
budget() {
    local be=${MED[vmgate,bulk,1,backend_cpu_s_per_gb]:-} cl=${MED[vmgate,bulk,1,client_cpu_s_per_gb]:-}
    local sv=${MED[vmgate,bulk,1,cpu_s_per_gb]:-} bz=${MED[vmgate,bulk,1,busy_pct]:-}
    [ -n "$be" ] && [ -n "$cl" ] && [ -n "$sv" ] || return 0
    awk -v t="$1" -v n="$NCPU" -v be="$be" -v cl="$cl" -v sv="$sv" -v bz="${bz:-0}" 'BEGIN {
        need = n * 1000 / t - be - cl
        printf "; CPU budget per GB on this path: Xvnc %.2f s + client %.2f s + vmgate %.2f s, CPUs %.0f%% busy; %.0f MB/s with %d cores fully busy needs vmgate ≤ %.2f s/GB", be, cl, sv, bz, t, n, need
    }'
}
TARGETS=$WORK/targets.md
{
    v=${MED[vmgate,bulk,1,mbps]:-}
    read -r bv bp <<<"$(best_peer bulk 1 mbps higher)"
    t=$(awk -v b="${bv:-0}" 'BEGIN { printf "%.6g", 1.25 * b }')
    tline "Bulk ≥ 1.25× best peer" "vmgate $(num "${v:-0}") MB/s vs $bp $(num "${bv:-0}") MB/s = $(ratio "$v" "$bv")$(budget "$t")" "$(verdict "$v" ">=" "$t")"
    d=${MED[tls_direct,bulk,1,mbps]:-}
    t=$(awk -v b="${d:-0}" 'BEGIN { printf "%.6g", 0.75 * b }')
    x=${MED[xvnc_tls,bulk,1,mbps]:-}
    tline "Bulk ≥ 0.75× direct TLS" "vmgate vs direct TLS (OpenSSL RFB server) $(num "${d:-0}") MB/s = $(ratio "$v" "$d")$( [ -n "$x" ] && echo "; vs Xvnc's own TLS $(num "$x") MB/s = $(ratio "$v" "$x")")$(budget "$t")" "$(verdict "$v" ">=" "$t")"
    for m in median_us p99_us; do
        v=${MED[vmgate,rtt,$RTT_COUNT,$m]:-}
        read -r bv bp <<<"$(best_peer rtt "$RTT_COUNT" "$m" lower)"
        tline "Round trip ${m%_us} ≤ best peer" "vmgate $(num "${v:-0}") µs vs $bp $(num "${bv:-0}") µs = $(ratio "$v" "$bv")" "$(verdict "$v" "<=" "$bv")"
    done
    if [ "$last_idle" -gt 0 ]; then
    # the peers' largest N (they may be capped below vmgate's)
    pn=0
    for n in $IDLE_LIST; do [ -n "${MED[haproxy,idle,$n,rss_kib_per_session]:-}" ] && pn=$n; done
    v=${MED[vmgate,idle,$last_idle,rss_kib_per_session]:-}
    al=${MED[vmgate,idle,$last_idle,alive]:-0}
    tline "Idle ≤ 16 KiB per session" "vmgate $(num "${v:-0}") KiB at $last_idle sessions$( [ "$pn" -gt 0 ] && echo " (at $pn: vmgate $(num "${MED[vmgate,idle,$pn,rss_kib_per_session]:-0}"), haproxy $(num "${MED[haproxy,idle,$pn,rss_kib_per_session]:-0}"), stunnel $(num "${MED[stunnel,idle,$pn,rss_kib_per_session]:-0}"))")" "$(verdict "$v" "<=" 16)"
    held=$(awk -v a="$al" -v n="$last_idle" 'BEGIN { print (a >= n) ? "met" : "not met" }')
    [ "$last_idle" -lt 10000 ] && held="$held at $last_idle; 10,000 not tried: fd limit $NOFILE"
    tline "10,000 idle sessions held" "vmgate ($VG_PROCS network processes) held ${al%.*} of $last_idle" "$held"
    fi
    v=${MED[vmgate,hs,4,per_s]:-}
    read -r bv bp <<<"$(best_peer hs 4 per_s higher)"
    c=${MED[vmgate,hs,4,hs_per_cpu_s]:-}
    read -r cv cp <<<"$(best_peer hs 4 hs_per_cpu_s higher)"
    tline "Login TLS part ≥ best peer's handshake rate" "vmgate's TLS part takes $(num "${MED[vmgate,login,4,tls_med_us]:-0}") µs vs $cp's handshake $(num "${MED[$cp,login,4,tls_med_us]:-0}") µs; server capacity $(num "${c:-0}") vs $(num "${cv:-0}") handshakes per CPU-second = $(ratio "$c" "$cv") ($(verdict "$c" ">=" "$cv")); closed-loop rate of 4 clients, the 4-round-trip RFB+VeNCrypt preamble included: $(num "${v:-0}")/s vs $bp $(num "${bv:-0}")/s = $(ratio "$v" "$bv") ($(verdict "$v" ">=" "$bv"))" "$(verdict "$c" ">=" "$cv") on capacity, $(verdict "$v" ">=" "$bv") on closed-loop rate"
    i=${MED[vmgate,storm_rtt,idle,median_us]:-}; s=${MED[vmgate,storm_rtt,storm,median_us]:-}
    t=$(awk -v b="${i:-0}" 'BEGIN { printf "%.6g", 2 * b }')
    tline "Round trips during a login storm ≤ 2× idle median" "vmgate median $(num "${s:-0}") µs during 4-thread logins vs $(num "${i:-0}") µs without (unpinned) = $(ratio "$s" "$i"); p99 $(num "${MED[vmgate,storm_rtt,storm,p99_us]:-0}") vs $(num "${MED[vmgate,storm_rtt,idle,p99_us]:-0}") µs" "$(verdict "$s" "<=" "$t")"
    if has vmgate_web && has websockify; then
    # issue 13: vmgate's web path against websockify, the browser peer
    wrow() {   # title workload param metric higher|lower divisor unit
        local a=${MED[vmgate_web,$2,$3,$4]:-} b=${MED[websockify,$2,$3,$4]:-} v
        v=$(awk -v a="$a" -v b="$b" -v d="$5" 'BEGIN { if (a == "" || b == "") print "not measured"
            else print ((d == "higher") ? (a >= b) : (a <= b)) ? "met" : "not met" }')
        tline "Web path: $1 ahead of websockify" "vmgate web $(num "$(scaled "${a:-0}" "$6")") $7 vs websockify $(num "$(scaled "${b:-0}" "$6")") $7 = $(ratio "$a" "$b")" "$v"
    }
    wrow "bulk MB/s" bulk 1 mbps higher 1 MB/s
    wrow "round trip median" rtt "$RTT_COUNT" median_us lower 1 µs
    wrow "round trip p99" rtt "$RTT_COUNT" p99_us lower 1 µs
    wrow "TLS handshakes/s" hs 4 per_s higher 1 /s
    wrow "sessions/s (TLS + WebSocket + RFB; vmgate also checks a yescrypt password, websockify has no login)" login 4 per_s higher 1 /s
    if [ "$IDLE_WS_N" -gt 0 ]; then
        wrow "idle memory per session ($IDLE_WS_N sessions, PSS)" idle "$IDLE_WS_N" pss_kib_per_session lower 1 KiB
        wrow "idle memory per session ($IDLE_WS_N sessions, RSS)" idle "$IDLE_WS_N" rss_kib_per_session lower 1 KiB
    fi
    fi
} > "$TARGETS"

MACHINE="$NCPU × $CPU_MODEL, $MEM_GB GB RAM, Linux $KERNEL; $VERSIONS"
{
    echo "### Benchmarks ($(date -u +%Y-%m-%d), \`make bench\`)"
    echo
    echo "Machine: $MACHINE. All on loopback; backend TigerVNC Xvnc 1920×1080×24 (static screen, Raw)."
    echo "Each cell: median [min–max] of $RUNS runs (idle: 1 run, fresh server). TLS 1.3, ECDSA P-256 certificate from \`vmgate certs init\`. vmgate runs with \`processes = $VG_PROCS\` (one network process per CPU, as haproxy 2.6 starts one thread per CPU)."
    echo "Bulk: non-incremental full-screen Raw updates, one request pipelined, ${SECS}s. Round trip: 1×1 non-incremental update, $RTT_COUNT times$([ "$PIN" = 1 ] && echo ", client, server and Xvnc pinned to CPU 0")."
    echo "Login: 4 client threads, ${LSECS}s, vmgate with \`auth = file\` (yescrypt). Handshakes: TCP connect to finished TLS handshake (vmgate: RFB + VeNCrypt preamble included), then close."
    echo "Idle: sessions opened by 8 client threads (vmgate: a user with a sha512crypt hash), held, then RSS of the server process tree before/after ÷ sessions; the relays forward them to \`vncbench serve\` (Xvnc aborts past 1,024 descriptors); fd limit $NOFILE per process, so at most $IDLE_MAX sessions per single-process relay."
    echo "Direct TLS = the same client against an OpenSSL RFB server that sends zeros (the TLS ceiling of this machine); Xvnc TLS = Xvnc's own VeNCrypt X509None (GnuTLS). CPU = utime+stime of the server process tree during the window; backend = Xvnc behind a relay, client = vncbench itself, busy = all CPUs (/proc/stat); ceiling = cores × 1000 ÷ all programs' CPU s per GB (the MB/s that budget allows with every core busy)."
    echo
    cat "$TABLE"
    echo
    echo "Targets (issue #6):"
    echo
    cat "$TARGETS"
    echo
    echo "![benchmark chart](bench/results/bench.png)"
} > "$OUT/latest.md"

# ---------------------------------------------------------------- chart
G=$WORK/gp
mkdir -p "$G"
gp_title() {   # path -> its label on the chart: the table's title as one word
    local t=${TITLE[$1]//\*/}
    t=${t% (plain)}; t=${t/#direct TLS/direct-TLS}; t=${t/#Xvnc TLS/Xvnc-TLS}
    printf '%s' "$t"
}
for p in $COLS; do
    k="$p,bulk,1,mbps"
    [ -n "${MED[$k]:-}" ] && echo "$(gp_title "$p") ${MED[$k]} ${MIN[$k]} ${MAX[$k]}" >> "$G/bulk.dat"
    k="$p,rtt,$RTT_COUNT"
    [ -n "${MED[$k,median_us]:-}" ] && echo "$(gp_title "$p") ${MED[$k,median_us]} ${MED[$k,p99_us]}" >> "$G/rtt.dat"
    k="$p,hs,4,per_s"
    [ -n "${MED[$k]:-}" ] && echo "$(gp_title "$p") ${MED[$k]} ${MIN[$k]} ${MAX[$k]}" >> "$G/hs.dat"
    # CPU budget per GB, stacked: the VNC server (Xvnc, or the reference
    # server), the relay, the client
    k="$p,bulk,1"
    if [ -n "${MED[$k,cpu_s_per_gb]:-}" ] && [ -n "${MED[$k,client_cpu_s_per_gb]:-}" ]; then
        case $p in
        direct|xvnc_tls|tls_direct) srvv=${MED[$k,cpu_s_per_gb]}; rel=0 ;;
        *) srvv=${MED[$k,backend_cpu_s_per_gb]:-0}; rel=${MED[$k,cpu_s_per_gb]} ;;
        esac
        echo "$(gp_title "$p") $srvv $rel ${MED[$k,client_cpu_s_per_gb]}" >> "$G/cpu.dat"
    fi
done
{
    printf 'path'; for k in 1 $SCALE_K; do printf ' K=%s' "$k"; done; echo
    for p in $SCALE_PATHS; do
        gp_title "$p"
        for k in 1 $SCALE_K; do
            if [ "$k" = 1 ]; then v=${MED[$p,bulk,1,mbps]:-0}; else v=${MED[$p,scale,$k,mbps]:-0}; fi
            printf ' %s' "$v"
        done
        echo
    done
} > "$G/scale.dat"
{
    printf 'server'; for n in $IDLE_LIST; do printf ' N=%s' "$n"; done; echo
    for s in vmgate haproxy stunnel; do
        has "$s" || continue
        printf '%s' "$s"
        for n in $IDLE_LIST; do printf ' %s' "${MED[$s,idle,$n,rss_kib_per_session]:-0}"; done
        echo
    done
} > "$G/idle.dat"
panel() {   # name gnuplot-commands: the commands, or an empty panel when there is no data
    if [ -s "$G/$1.dat" ] && [ "$(wc -l < "$G/$1.dat")" -ge 1 ] && { [ "$1" != idle ] || [ -n "$IDLE_LIST" ]; }; then
        printf '%s\n' "$2"
    else
        printf 'set title "%s: not measured"; unset xtics; plot [0:1] [0:1] NaN notitle; set xtics\n' "$1"
    fi
}
cat > "$G/bench.gp" <<EOF
set terminal pngcairo size 1500,950 font "DejaVu Sans,9"
set output "$OUT/bench.png"
set multiplot layout 2,3 title "vmgate vs stunnel, haproxy, websockify — $NCPU × $CPU_MODEL, Linux $KERNEL ($(date -u +%Y-%m-%d))"
set style fill solid 0.8 border -1
set boxwidth 0.7
set grid ytics
set xtics rotate by -30 scale 0
set key top right
set yrange [0:*]
set style data histogram
$(panel bulk 'set title "Bulk: MB/s, 1 session (median, min–max)"; set style histogram errorbars gap 1 lw 1
plot "'$G'/bulk.dat" using 2:3:4:xtic(1) notitle lc rgb "#4472c4"')
$(panel rtt 'set title "Round trip: µs (median, p99)"; set style histogram clustered gap 1; set key top left
plot "'$G'/rtt.dat" using 2:xtic(1) title "median" lc rgb "#4472c4", "" using 3 title "p99" lc rgb "#ed7d31"')
$(panel hs 'set title "TLS handshakes/s (4 client threads)"; set style histogram errorbars gap 1 lw 1
plot "'$G'/hs.dat" using 2:3:4:xtic(1) notitle lc rgb "#70ad47"')
$(panel scale 'set title "Scaling: aggregate MB/s"; set style histogram clustered gap 1; set key top right
plot for [i=2:'$(( $(echo 1 $SCALE_K | wc -w) + 1 ))'] "'$G'/scale.dat" using i:xtic(1) title columnheader(i)')
$(panel idle 'set title "Idle: KiB RSS per session"; set style histogram clustered gap 1; set key top left
plot for [i=2:'$(( $(echo $IDLE_LIST | wc -w) + 1 ))'] "'$G'/idle.dat" using i:xtic(1) title columnheader(i)')
$(panel cpu 'set title "Bulk: CPU s per GB moved, all programs (median)"; set style histogram rowstacked; set boxwidth 0.6; set key top left reverse Left
plot "'$G'/cpu.dat" using 2:xtic(1) title "VNC server" lc rgb "#a5a5a5", "" using 3 title "relay" lc rgb "#4472c4", "" using 4 title "client" lc rgb "#ffc000"')
unset multiplot
EOF
gnuplot "$G/bench.gp" 2>"$LOG/gnuplot.log" || say "gnuplot failed (see $LOG/gnuplot.log)"

# ---------------------------------------------------------------- print
echo
cat "$OUT/latest.md"
echo
say "done: $OUT/results.csv, $OUT/summary.csv, $OUT/latest.md, $OUT/bench.png (logs: $LOG)"
