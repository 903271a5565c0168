#!/usr/bin/env bash
# Starts relaycap on a throw-away state directory, commits one relay for
# each of ACCOUNTS logins through the milter socket, and prints the rate and
# the daemon's RSS, then checks that relaycap_relays_committed_total equals
# the sum of the decision lines' accepted= (counters are money).
# Usage: test/load/run.sh [ACCOUNTS] [CONNECTIONS]
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
metrics: {listen: "unix:$dir/metrics.sock"}
id_header: {keys_file: $dir/id.keys}
quota: {default_daily_limit: 10}
log: {level: info}
YAML
"$dir/relaycap" serve --config "$dir/relaycap.yaml" 2>"$dir/relaycap.log" &
pid=$!
for _ in $(seq 100); do [ -S "$dir/milter.sock" ] && break; sleep 0.05; done
[ -S "$dir/milter.sock" ] || { cat "$dir/relaycap.log"; exit 1; }
go run ./test/load -milter "unix:$dir/milter.sock" -accounts "$accounts" -c "$conns" -pid "$pid"
committed=$(curl -sf --unix-socket "$dir/metrics.sock" http://relaycap/metrics | awk '$1 == "relaycap_relays_committed_total" {print $2}')
logged=$(grep ' msg=decision ' "$dir/relaycap.log" | sed -n 's/.* accepted=\([0-9]*\) .*/\1/p' | awk '{s += $1} END {print s + 0}')
echo "relays committed: $committed (metric), $logged (sum of the decision lines' accepted)"
# Compared as numbers: the exposition writes 1e+06 for a million.
[ -n "$committed" ] && awk -v a="$committed" -v b="$logged" 'BEGIN {exit !(a + 0 == b + 0)}' || { echo "FAIL: the counter and the decision lines disagree" >&2; exit 1; }
