#!/usr/bin/env bash
# Starts relaycap on a throw-away state directory, commits one relay for
# each of ACCOUNTS logins through the milter socket, and prints the rate and
# the daemon's RSS. Usage: test/load/run.sh [ACCOUNTS] [CONNECTIONS]
set -euo pipefail
accounts=${1:-100000}
conns=${2:-8}
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
go build -o "$dir/relaycap" ./cmd/relaycap
"$dir/relaycap" id keygen --keys-file "$dir/id.keys" >/dev/null
cat >"$dir/relaycap.yaml" <<YAML
state_dir: $dir/state
milter: {listen: "unix:$dir/milter.sock"}
policy: {listen: "unix:$dir/policy.sock"}
id_header: {keys_file: $dir/id.keys}
quota: {default_daily_limit: 10}
log: {level: warn}
YAML
"$dir/relaycap" serve --config "$dir/relaycap.yaml" 2>"$dir/relaycap.log" &
pid=$!
for _ in $(seq 100); do [ -S "$dir/milter.sock" ] && break; sleep 0.05; done
[ -S "$dir/milter.sock" ] || { cat "$dir/relaycap.log"; exit 1; }
go run ./test/load -milter "unix:$dir/milter.sock" -accounts "$accounts" -c "$conns" -pid "$pid"
