#!/bin/bash
# Usage (from the repository root, after `cargo build --release --bin strata`):
#   benches/checksum-ab.sh
# Starts a server on 127.0.0.1:9701 over fresh drives in $BENCH_DIR and prints one
# `strata bench --json` line per run, A/B interleaved in one sitting: PUTs without a checksum
# header (the server still stores its default CRC64NVME) against PUTs sending one, which the
# server verifies before committing: 4 KiB and 1 MiB with CRC64NVME, 64 MiB with SHA-256.
set -e
BIN=${STRATA_BIN:-target/release/strata}
D=${BENCH_DIR:-/tmp/bench-checksum}
rm -rf $D; mkdir -p $D/disk{1,2,3,4}
export STRATA_ROOT_USER=benchroot STRATA_ROOT_PASSWORD=benchroot-secret
$BIN server --address 127.0.0.1:9701 $D/disk{1...4} > $D/server.log 2>&1 &
SRV=$!
trap "kill $SRV; wait $SRV 2>/dev/null" EXIT
for i in $(seq 50); do curl -sf http://127.0.0.1:9701/health/ready >/dev/null && break; sleep 0.2; done
run() { # size concurrency duration checksum
  local extra=()
  [ "$4" != none ] && extra=(--checksum "$4")
  $BIN bench put --endpoint http://127.0.0.1:9701 --access-key benchroot --secret-key benchroot-secret \
     --size $1 --concurrency $2 --duration $3 --warmup 2s --json "${extra[@]}"
}
settle() { # each run deletes its objects; wait (at most a minute) for the trash to be emptied
  for i in $(seq 60); do
    [ "$(du -sm $D 2>/dev/null | cut -f1)" -lt 512 ] && return
    sleep 1
  done
}
for spec in "4KiB 8 10s CRC64NVME" "1MiB 8 8s CRC64NVME" "64MiB 4 10s SHA256"; do
  set -- $spec
  for round in 1 2; do
    for ck in none $4; do
      settle
      echo "$1 $ck $(run $1 $2 $3 $ck)"
    done
  done
done
