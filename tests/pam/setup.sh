#!/bin/bash
# tests/pam/setup.sh DIR — write a pam_wrapper service directory for the
# "vmgate-test" PAM service into DIR (DIR/services, DIR/passdb), then print
# the environment to run a program under it:
#
#   eval "$(tests/pam/setup.sh /tmp/x)"; build/vmgate run -c ...   # pam_service = vmgate-test
#
# Users (tests/pam/passdb): alice/alice-pw and bob/bob-pw may use the
# service; carol/carol-pw passes auth but fails the account phase.
# tests/unit/test_auth_pam.c writes the same files itself (plus the running
# user), so it needs no setup.  Exits 77 if pam_wrapper is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: setup.sh DIR}
mkdir -p "$dir/services"
dir=$(cd "$dir" && pwd)

first() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return 0; }; done; return 1; }
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
wrapper=$(first /usr/lib/$arch/libpam_wrapper.so /usr/lib64/libpam_wrapper.so /usr/lib/libpam_wrapper.so) || {
    echo "setup.sh: libpam_wrapper.so not found (install libpam-wrapper)" >&2; exit 77; }
matrix=$(first /usr/lib/$arch/pam_wrapper/pam_matrix.so /usr/lib64/pam_wrapper/pam_matrix.so /usr/lib/pam_wrapper/pam_matrix.so) || {
    echo "setup.sh: pam_matrix.so not found (install libpam-wrapper)" >&2; exit 77; }
deny=$(first /usr/lib/$arch/security/pam_deny.so /usr/lib64/security/pam_deny.so /lib/security/pam_deny.so /usr/lib/security/pam_deny.so) || {
    echo "setup.sh: pam_deny.so not found" >&2; exit 1; }
secdir=$(dirname "$deny")

cp "$here/passdb" "$dir/passdb"
for svc in vmgate-test other; do
    sed -e "s|@PAM_MATRIX@|$matrix|g" -e "s|@PASSDB@|$dir/passdb|g" -e "s|@SECURITY_DIR@|$secdir|g" \
        "$here/$svc.in" > "$dir/services/$svc"
done
echo "export LD_PRELOAD=$wrapper PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$dir/services"
