#!/usr/bin/env bash
# packaging/check.sh DEB RPM: make package-check. Lints both packages,
# rebuilds them to compare bytes (reproducible builds), lists the rpm, and
# runs the install test (test/install) on this Debian machine as root.
set -euo pipefail
deb=$1 rpm=$2
GO=${GO:-go}
fail() { echo "package-check: $*" >&2; exit 1; }
section() { printf '\n== %s\n' "$*"; }

section "lintian $deb (no errors, no warnings; overrides in packaging/lintian-overrides)"
lintian --fail-on error,warning --display-info "$deb" 2>&1 | grep -v '^running with root privileges' || true
lintian --fail-on error,warning "$deb" >/dev/null 2>&1 || fail "lintian reports errors or warnings"

section "rpmlint $rpm (no errors but the missing signature)"
# nfpm's rpm payload names files with absolute paths, and rpmlint extracts
# it with a plain `cpio -id`, which as root would write the package into /.
# A cpio first in PATH adds --no-absolute-filenames.
shim=$(mktemp -d)
second=
cleanup() {
	rm -rf "$shim"
	if [ -n "$second" ]; then
		[ -d "$second/src" ] && git worktree remove --force "$second/src" 2>/dev/null
		rm -rf "$second"
	fi
	return 0
}
trap cleanup EXIT
printf '#!/bin/sh\nexec /usr/bin/cpio --no-absolute-filenames "$@"\n' > "$shim/cpio"
chmod 0755 "$shim/cpio"
out=$(PATH="$shim:$PATH" rpmlint -c packaging/rpmlint.toml "$rpm" 2>&1) || true
echo "$out"
errors=$(echo "$out" | grep ': E: ' | grep -v ': E: no-signature' || true)
[ -z "$errors" ] || fail "rpmlint errors: $errors"
echo "$out" | grep -q '0 errors\|E: no-signature' || fail "rpmlint did not run: $out"

section "rpm -qpil: files, config(noreplace), scripts"
rpm -qpil "$rpm"
flags=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" | grep ' /etc/relaycap/relaycap.yaml$' || true)
echo "flags: $flags"
case "$flags" in cn\ *) ;; *) fail "/etc/relaycap/relaycap.yaml is not %config(noreplace): '$flags'" ;; esac
scripts=$(rpm -qp --scripts "$rpm")
echo "$scripts"
for s in postinstall preuninstall postuninstall; do
	echo "$scripts" | grep -q "^$s scriptlet" || fail "rpm has no $s scriptlet"
done
rpm -qpl "$rpm" | grep -qx /usr/bin/relaycap || fail "rpm lacks /usr/bin/relaycap"

section "reproducible: a second build with SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
# From a clean checkout of the same commit in another folder when the tree
# is clean (CI's is), so the build path cannot leak in; else in place.
second=$(mktemp -d)
if [ -z "$(git status --porcelain 2>/dev/null)" ] && git worktree add --detach -q "$second/src" HEAD; then
	echo "second build in $second/src (git worktree of $(git rev-parse --short HEAD))"
	make --no-print-directory -C "$second/src" deb rpm >/dev/null
	for f in "$deb" "$rpm"; do
		cmp "$f" "$second/src/$f" || fail "$f differs between two builds"
		echo "identical: $(sha256sum "$f")"
	done
else
	echo "the tree has local changes: second build in place"
	cp "$deb" "$rpm" "$second/"
	make --no-print-directory deb rpm >/dev/null
	for f in "$deb" "$rpm"; do
		cmp "$second/$(basename "$f")" "$f" || fail "$f differs between two builds"
		echo "identical: $(sha256sum "$f")"
	done
fi
section "install test on this machine (test/install)"
RELAYCAP_DEB=$(realpath "$deb") $GO test -tags 'e2e install' -count=1 -v -timeout 10m ./test/install/
