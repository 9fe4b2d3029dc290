#!/bin/bash
# Usage (from the repository root, after `cargo build --release --bin strata`):
#   [ROUNDS=2] [SPECS="64MiB 4 10s 8;1MiB 8 8s 200;4KiB 8 8s 1000"] benches/sse-ab.sh
# The cost of SSE-S3 on PUT and GET, one sitting, runs interleaved, each on a fresh server over
# fresh drives in $BENCH_DIR (127.0.0.1:9702), the same binary both ways, one `strata bench
# --json` line per run:
#   plain  - no KMS: objects stored as they come
#   sse-s3 - the built-in KMS and STRATA_SSE_AUTO=true: every object sealed (AES-256-GCM,
#            64 KiB packages), every GET opens its packages
# GET runs prefill their own objects (through the same server, so sealed with SSE-S3).
set -e
BIN=${STRATA_BIN:-target/release/strata}
D=${BENCH_DIR:-/tmp/bench-sse}
ROUNDS=${ROUNDS:-2}
export STRATA_ROOT_USER=benchroot STRATA_ROOT_PASSWORD=benchroot-secret
SRV=
stop() { [ -n "$SRV" ] && kill $SRV && wait $SRV 2>/dev/null; SRV=; }
trap stop EXIT
start() { # mode
  stop
  rm -rf $D; mkdir -p $D/disk{1,2,3,4}
  if [ "$1" = sse-s3 ]; then
    STRATA_KMS_SECRET_KEY="bench-key:$(head -c32 /dev/urandom | base64)" STRATA_SSE_AUTO=true \
      $BIN server --address 127.0.0.1:9702 $D/disk{1...4} > $D.log 2>&1 &
  else
    $BIN server --address 127.0.0.1:9702 $D/disk{1...4} > $D.log 2>&1 &
  fi
  SRV=$!
  for i in $(seq 50); do curl -sf http://127.0.0.1:9702/health/ready >/dev/null && return; sleep 0.2; done
}
run() { # op size concurrency duration objects
  $BIN bench $1 --endpoint http://127.0.0.1:9702 --access-key benchroot --secret-key benchroot-secret \
     --bucket sse-bench --size $2 --concurrency $3 --duration $4 --objects $5 --warmup 2s --json
}
# SPECS: ";"-separated "size concurrency duration objects" (objects: prefilled for GET).
IFS=';' read -ra LIST <<< "${SPECS:-64MiB 4 10s 8;1MiB 8 8s 200;4KiB 8 8s 1000}"
for spec in "${LIST[@]}"; do
  set -- $spec
  for round in $(seq $ROUNDS); do
    for mode in plain sse-s3; do
      start $mode
      echo "$1 put $mode $(run put $1 $2 $3 $4)"
      echo "$1 get $mode $(run get $1 $2 $3 $4)"
    done
  done
done
stop
rm -rf $D
