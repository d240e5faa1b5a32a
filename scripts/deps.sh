#!/bin/bash
# scripts/deps.sh — install the Debian 12 packages vmgate needs to build, test and demo.
#
# Does nothing when everything is already installed (checked with dpkg-query).
# Otherwise runs `apt-get update` once and installs the missing packages,
# non-interactively and without recommends.  Needs root, or sudo; without
# either it prints the command to run and exits 1.
set -euo pipefail

PACKAGES=(
    # build
    build-essential pkg-config clang
    libev-dev libssl-dev libpam0g-dev libcrypt-dev libnftables-dev zlib1g-dev libsystemd-dev libseccomp-dev
    # unit tests
    libcmocka-dev
    # integration tests and demo
    libpam-wrapper nftables iproute2 passwd
    qemu-system-x86 ipxe-qemu seabios
    tigervnc-viewer gvncviewer xvfb xauth x11-utils xclip
    openssl python3 python3-pil procps psmisc util-linux coreutils
    # SPICE: spicy-screenshot, GObject bindings for the clipboard test, the test server
    spice-client-gtk libspice-server-dev libspice-protocol-dev gir1.2-spiceclientglib-2.0
    python3-gi libsasl2-modules
    # clipboard end-to-end: Xvnc with a real X clipboard, libvncclient for a legacy viewer
    tigervnc-standalone-server libvncserver-dev
    # service and package tests (t70-t74): systemd-analyze, man(1) for its
    # Documentation= check, dpkg-buildpackage with debhelper, lintian
    systemd man-db dpkg-dev debhelper lintian
    # ssh way in (t80-t81): a private sshd on a loopback port, ssh -L to socket_dir
    openssh-server openssh-client
    # serial console (t82, t90): tmux drives `ssh -t ... vmgate console --serial`
    tmux
    # metrics test (t85): the Prometheus text format parser
    python3-prometheus-client
    # browser console (t86, t87): noVNC 1.3 served by vmgate, headless Chromium
    # driven over DevTools, its NSS trust store, the Python WebSocket client
    novnc chromium python3-websocket libnss3-tools
    # PROXY protocol (t77): a real haproxy with send-proxy-v2 in front
    haproxy
    # make bench: the peers (haproxy also relays TLS on bench/cu.sh's far link), charts
    stunnel4 websockify gnuplot-nox
    # test_web_wslay: libwslay as the oracle of proxy/ws.c (tests only)
    libwslay-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing+=("$p") ;;
    esac
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

echo "deps: missing: ${missing[*]}"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "deps: not root and no sudo; as root, run:" >&2
        echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "deps: installed ${missing[*]}"
