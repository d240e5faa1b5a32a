#!/bin/bash
# t71-deb: the Debian package.  Builds it with `dpkg-buildpackage -us -uc -b`
# in a copy of the tree (scripts/build-deb.sh, as `make deb`), then checks:
#  - its contents: /usr/bin/vmgate, vmgate(8), vmgate.conf(5), the unit in
#    /lib/systemd/system, the default config and the PAM service, both conffiles;
#  - lintian reports no error and no warning (when lintian is installed);
#  - installed with dpkg into a throwaway copy of this machine (an overlay of /
#    on a tmpfs, in a private mount namespace, entered with chroot, so nothing
#    reaches the real system): postinst creates the vmgate user and group, the
#    service is neither enabled nor started, `vmgate check` accepts the shipped
#    config, `systemd-analyze verify` accepts the installed unit;
#  - `dpkg --purge` removes the binary, /etc/vmgate (with certificates made
#    by `vmgate certs init`), /etc/pam.d/vmgate, the user and the group.
# Needs root (mounts, chroot); dpkg-buildpackage and debhelper.
. "$(dirname "$0")/lib.sh"
need_root "mounts an overlay and chroots into it"
need_tools "the package test" dpkg-buildpackage dh dpkg-deb unshare chroot
unshare --mount true 2>/dev/null || skip "cannot create a mount namespace here"

t0=$(date +%s)
"$ROOT/scripts/build-deb.sh" "$T/out" >"$T/build-deb.log" 2>&1 ||
    { cat "$T/build-deb.log"; fail "scripts/build-deb.sh failed"; }
say "package built in $(($(date +%s) - t0)) s"
DEB=$(ls "$T"/out/vmgate_*_*.deb)

dpkg-deb -c "$DEB" | awk '{print $6}' >"$T/contents"
for f in ./usr/bin/vmgate ./usr/share/man/man8/vmgate.8.gz ./usr/share/man/man5/vmgate.conf.5.gz \
    ./lib/systemd/system/vmgate.service ./etc/vmgate/vmgate.conf ./etc/pam.d/vmgate \
    ./etc/logrotate.d/vmgate; do
    grep -qx -- "$f" "$T/contents" || { cat "$T/contents"; fail "the package lacks $f"; }
done
grep -q '^./usr/sbin/' "$T/contents" && fail "the package installs into /usr/sbin (users need vmgate on their PATH)"
dpkg-deb -e "$DEB" "$T/ctrl"
for f in /etc/vmgate/vmgate.conf /etc/pam.d/vmgate; do
    grep -qx "$f" "$T/ctrl/conffiles" || fail "$f is not a conffile"
done

if command -v lintian >/dev/null; then
    lintian --allow-root "$DEB" >"$T/lintian.txt" 2>&1 || true
    if grep -E '^(E|W):' "$T/lintian.txt"; then
        fail "lintian reports errors or warnings"
    fi
    say "lintian: $(grep -c '^[A-Z]:' "$T/lintian.txt" || true) tag(s) left, none E: or W:"
else
    say "lintian not installed: not run"
fi

# ---- install into a throwaway copy of this machine
R=$T/root
mkdir -p "$R" "$T/ovl"
cat >"$T/inside.sh" <<'INSIDE'
#!/bin/bash
# runs chrooted in the overlay: install, look, purge
set -u
n=0
ok()  { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; n=$((n + 1)); }
had_user=no
getent passwd vmgate >/dev/null && had_user=yes
DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/vmgate.deb >/tmp/dpkg-i.log 2>&1 ||
    { cat /tmp/dpkg-i.log; bad "dpkg -i failed"; exit 1; }
[ -x /usr/bin/vmgate ] && ok "/usr/bin/vmgate installed" || bad "/usr/bin/vmgate missing"
getent passwd vmgate >/dev/null && ok "user vmgate exists" || bad "postinst created no user vmgate"
getent group vmgate >/dev/null && ok "group vmgate exists" || bad "postinst created no group vmgate"
shell=$(getent passwd vmgate | cut -d: -f7)
case $shell in */nologin|*/false) ok "vmgate has no login shell" ;; *) bad "vmgate's shell is $shell" ;; esac
[ -e /etc/systemd/system/multi-user.target.wants/vmgate.service ] &&
    bad "the service was enabled at install" || ok "the service is not enabled"
if vmgate check >/tmp/check.out 2>&1 && grep -q 'vmgate.conf: OK' /tmp/check.out; then
    ok "vmgate check accepts the shipped /etc/vmgate/vmgate.conf"
else
    cat /tmp/check.out; bad "vmgate check refuses the shipped config"
fi
if command -v systemd-analyze >/dev/null; then
    # --man=no: the man pages' presence is checked on the .deb (a minimal
    # image's dpkg excludes /usr/share/man); t70 checks them with man(1)
    if systemd-analyze verify --man=no /lib/systemd/system/vmgate.service >/tmp/verify.out 2>&1 &&
        ! [ -s /tmp/verify.out ]; then
        ok "systemd-analyze verify: the installed unit is clean (ExecStart binary found)"
    else
        cat /tmp/verify.out; bad "systemd-analyze verify complains about the installed unit"
    fi
fi
vmgate certs init --dir /etc/vmgate/tls >/dev/null 2>&1 || bad "vmgate certs init failed"
vmgate check >/tmp/check2.out 2>&1
grep -q warning /tmp/check2.out && { cat /tmp/check2.out; bad "vmgate check warns with certificates in place"; }
DEBIAN_FRONTEND=noninteractive dpkg --purge vmgate >/tmp/dpkg-p.log 2>&1 ||
    { cat /tmp/dpkg-p.log; bad "dpkg --purge failed"; exit 1; }
for f in /usr/bin/vmgate /etc/vmgate /etc/pam.d/vmgate /lib/systemd/system/vmgate.service \
    /usr/share/man/man8/vmgate.8.gz; do
    [ -e "$f" ] && bad "$f is still there after purge" || ok "purge removed $f"
done
if [ $had_user = no ]; then
    getent passwd vmgate >/dev/null && bad "purge left the user vmgate" || ok "purge removed the user"
    getent group vmgate >/dev/null && bad "purge left the group vmgate" || ok "purge removed the group"
fi
exit $n
INSIDE
chmod +x "$T/inside.sh"
rc=0
unshare --mount --propagation private bash -c '
    set -e
    T=$1 R=$2 DEB=$3
    mount -t tmpfs tmpfs "$T/ovl"
    mkdir "$T/ovl/up" "$T/ovl/work"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$T/ovl/up,workdir=$T/ovl/work" "$R"
    mount -t proc proc "$R/proc"
    mount --rbind /dev "$R/dev"
    mount -t tmpfs tmpfs "$R/tmp"
    mount -t tmpfs tmpfs "$R/run"
    cp "$DEB" "$R/tmp/vmgate.deb"
    cp "$T/inside.sh" "$R/tmp/inside.sh"
    exec chroot "$R" /tmp/inside.sh
' _ "$T" "$R" "$DEB" >"$T/inside.log" 2>&1 || rc=$?
cat "$T/inside.log"
[ "$rc" -eq 0 ] || fail "installing/purging in the overlay: $rc check(s) failed"
# nothing reached the real system
dpkg-query -W vmgate >/dev/null 2>&1 && fail "the real system's dpkg now lists vmgate"
true
