#!/bin/bash
# Usage (from the repository root, after `cargo build --release --bin strata`):
#   [BASE_BIN=/path/to/strata-before-checksums] [ROUNDS=2] [SPECS="64MiB 4 10s SHA256;..."] benches/checksum-ab.sh
# The cost of checksums on PUT, one sitting, runs interleaved, each on a fresh server over fresh
# drives in $BENCH_DIR (127.0.0.1:9701), one `strata bench --json` line per run:
#   base  - BASE_BIN, a build from before checksums existed (only when BASE_BIN is set)
#   none  - this build, no checksum header (the server still computes and stores CRC64NVME)
#   ALG   - this build, the PUT carries x-amz-checksum-ALG, verified before the commit
# 4 KiB and 1 MiB with CRC64NVME, 64 MiB with SHA-256.
set -e
BIN=${STRATA_BIN:-target/release/strata}
D=${BENCH_DIR:-/tmp/bench-checksum}
ROUNDS=${ROUNDS:-2}
export STRATA_ROOT_USER=benchroot STRATA_ROOT_PASSWORD=benchroot-secret
SRV=
stop() { [ -n "$SRV" ] && kill $SRV && wait $SRV 2>/dev/null; SRV=; }
trap stop EXIT
start() { # binary
  stop
  rm -rf $D; mkdir -p $D/disk{1,2,3,4}
  $1 server --address 127.0.0.1:9701 $D/disk{1...4} > $D.log 2>&1 &
  SRV=$!
  for i in $(seq 50); do curl -sf http://127.0.0.1:9701/health/ready >/dev/null && return; sleep 0.2; done
}
run() { # size concurrency duration checksum
  local extra=()
  [ "$4" != none ] && extra=(--checksum "$4")
  $BIN bench put --endpoint http://127.0.0.1:9701 --access-key benchroot --secret-key benchroot-secret \
     --size $1 --concurrency $2 --duration $3 --warmup 2s --json "${extra[@]}"
}
# SPECS: ";"-separated "size concurrency duration algorithm" runs.
IFS=';' read -ra LIST <<< "${SPECS:-4KiB 8 10s CRC64NVME;1MiB 8 8s CRC64NVME;64MiB 4 10s SHA256}"
for spec in "${LIST[@]}"; do
  set -- $spec
  for round in $(seq $ROUNDS); do
    if [ -n "$BASE_BIN" ]; then
      start $BASE_BIN
      echo "$1 base $(run $1 $2 $3 none)"
    fi
    for ck in none $4; do
      start $BIN
      echo "$1 $ck $(run $1 $2 $3 $ck)"
    done
  done
done
stop
rm -rf $D
