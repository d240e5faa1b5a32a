#!/usr/bin/env python3
"""bench/ratios.py — one table of ratios from `make bench`'s two parts.

    ratios.py SUMMARY_CSV CU_CSV OUT_MD

SUMMARY_CSV: bench/run.sh's summary.csv (path,workload,param,metric,n,
median,min,max); CU_CSV: bench/cu.sh's cu.csv (one line per run; medians
are taken here).  Either may be missing (that part did not run).  Prints
the table and writes it to OUT_MD.  Each row: the figure, vmgate's median,
the peer's (the best of stunnel/haproxy/websockify on loopback; websockify
for the web path; haproxy as a TLS relay on the far link), and vmgate ÷
peer, with which way is better."""
import csv
import os
import statistics
import sys


def load_summary(path):
    med = {}
    if not os.path.exists(path):
        return med
    for r in csv.DictReader(open(path)):
        med[(r["path"], r["workload"], r["param"], r["metric"])] = float(r["median"])
    return med


def load_cu(path):
    out = {}
    if not os.path.exists(path):
        return out
    runs = {}
    for r in csv.DictReader(open(path)):
        for k, v in r.items():
            if k in ("round", "scene", "rtt_ms", "path") or v in ("", "nan"):
                continue
            try:
                runs.setdefault((r["scene"], r["rtt_ms"], r["path"], k), []).append(float(v))
            except ValueError:
                pass
    for k, v in runs.items():
        out[k] = statistics.median(v)
    return out


def fmt(x):
    if x is None:
        return "–"
    a = abs(x)
    return "%.0f" % x if a >= 100 else "%.1f" % x if a >= 10 else "%.2f" % x


def main(argv):
    s, cu = load_summary(argv[1]), load_cu(argv[2])
    rows = []

    def row(title, v, peer_name, p, better):
        if v is None or p is None:
            return
        r = v / p if p else None
        good = None if r is None else (r >= 1 if better == "higher" else r <= 1)
        rows.append("| %s | %s | %s %s | %s | %s |" % (
            title, fmt(v), peer_name, fmt(p), "–" if r is None else ("%.2f×" % r if r >= 0.1 else "%.2g×" % r),
            "higher is better" if better == "higher" else "lower is better") +
            ("" if good is None else " vmgate ahead |" if good else " peer ahead |"))

    def best(workload, param, metric, better):
        c = [(s[(p, workload, param, metric)], p) for p in ("stunnel", "haproxy", "websockify")
             if (p, workload, param, metric) in s]
        if not c:
            return None, None
        v = max(c) if better == "higher" else min(c)
        return v[0], v[1]

    rtt_n = next((k[2] for k in s if k[1] == "rtt"), None)
    for title, w, pa, m, b in (
            ("loopback: bulk MB/s", "bulk", "1", "mbps", "higher"),
            ("loopback: round trip median µs", "rtt", rtt_n, "median_us", "lower"),
            ("loopback: round trip p99 µs", "rtt", rtt_n, "p99_us", "lower"),
            ("loopback: TLS handshakes/s", "hs", "4", "per_s", "higher")):
        p, pn = best(w, pa, m, b)
        row(title, s.get(("vmgate", w, pa, m)), pn or "", p, b)
    idle_ns = sorted({int(k[2]) for k in s if k[1] == "idle" and k[0] == "haproxy"
                      and k[3] == "rss_kib_per_session"})
    if idle_ns:
        n = str(idle_ns[-1])
        row("loopback: idle KiB RSS per session (%s)" % n, s.get(("vmgate", "idle", n, "rss_kib_per_session")),
            "haproxy", s.get(("haproxy", "idle", n, "rss_kib_per_session")), "lower")
    for title, w, pa, m, b in (
            ("web path: bulk MB/s", "bulk", "1", "mbps", "higher"),
            ("web path: round trip median µs", "rtt", rtt_n, "median_us", "lower"),
            ("web path: TLS handshakes/s", "hs", "4", "per_s", "higher")):
        row(title, s.get(("vmgate_web", w, pa, m)), "websockify", s.get(("websockify", w, pa, m)), b)
    ws_n = sorted({k[2] for k in s if k[0] == "websockify" and k[1] == "idle"})
    for n in ws_n:
        row("web path: idle KiB PSS per session (%s)" % n, s.get(("vmgate_web", "idle", n, "pss_kib_per_session")),
            "websockify", s.get(("websockify", "idle", n, "pss_kib_per_session")), "lower")
    scenes = sorted({(k[0], int(k[1])) for k in cu},
                    key=lambda x: (["small", "large", "synth"].index(x[0]) if x[0] in ("small", "large", "synth") else 9, x[1]))
    for sc, rtt in scenes:
        g = lambda p, m: cu.get((sc, str(rtt), p, m))
        row("far link %s, RTT %d ms: updates/s" % (sc, rtt), g("vmgate", "updates_per_s"), "haproxy",
            g("haproxy", "updates_per_s"), "higher")
        if sc == "large":
            row("far link %s, RTT %d ms: MB/s" % (sc, rtt), g("vmgate", "mbytes_per_s"), "haproxy",
                g("haproxy", "mbytes_per_s"), "higher")
        if g("vmgate", "fresh_p50_ms") is not None:
            row("far link %s, RTT %d ms: age of a frame on arrival, median ms" % (sc, rtt),
                g("vmgate", "fresh_p50_ms"), "haproxy", g("haproxy", "fresh_p50_ms"), "lower")
            row("far link %s, RTT %d ms: age before the next frame, p95 ms" % (sc, rtt),
                g("vmgate", "age_p95_ms"), "haproxy", g("haproxy", "age_p95_ms"), "lower")
    txt = "| figure | vmgate | peer | vmgate ÷ peer | | |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    open(argv[3], "w").write(txt)
    print(txt)


if __name__ == "__main__":
    main(sys.argv)
