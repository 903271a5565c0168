#!/bin/sh
# contents.sh STAGE < nfpm.yaml > dist/nfpm.yaml: copies nfpm.yaml and
# appends a contents entry per man page and doc file under STAGE, once for
# the .deb and once as type doc for the .rpm (see nfpm.yaml). Sorted, so
# the config, like the packages, is the same on every build.
set -eu
stage=$1
cat
entry() { # src dst
	printf '  - src: %s\n    dst: %s\n    packager: deb\n    file_info: {mode: 0644}\n' "$1" "$2"
	printf '  - src: %s\n    dst: %s\n    type: doc\n    packager: rpm\n    file_info: {mode: 0644}\n' "$1" "$2"
}
(cd "$stage/man" && find . -type f | LC_ALL=C sort) | while read -r f; do
	entry "$stage/man/${f#./}" "/usr/share/man/${f#./}"
done
(cd "$stage/doc" && find . -type f | LC_ALL=C sort) | while read -r f; do
	entry "$stage/doc/${f#./}" "/usr/share/doc/relaycap/${f#./}"
done
