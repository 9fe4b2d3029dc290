#!/bin/bash
# Usage (from the repository root, after `cargo build --release --bin strata` and the test venv):
#   WORKLOADS="put get" ORDER="root user root user" benches/authz-ab.sh
# Starts a server on 127.0.0.1:9700 over fresh drives in $BENCH_DIR, creates benchuser (readwrite) and
# two buckets under the same bucket policy, then prints one `strata bench --json` line per run.
# A/B: root vs a non-root user under a bucket policy, 4 KiB PUT and GET, one sitting.
set -e
BIN=${STRATA_BIN:-target/release/strata}
D=${BENCH_DIR:-/tmp/bench-acl}
rm -rf $D; mkdir -p $D/disk{1,2,3,4}
export STRATA_ROOT_USER=benchroot STRATA_ROOT_PASSWORD=benchroot-secret
$BIN server --address 127.0.0.1:9700 $D/disk{1...4} > $D/server.log 2>&1 &
SRV=$!
trap "kill $SRV; wait $SRV 2>/dev/null" EXIT
for i in $(seq 50); do curl -sf http://127.0.0.1:9700/health/ready >/dev/null && break; sleep 0.2; done
${PYTHON:-.venv-tests/bin/python} - <<'PY'
import json, boto3
from minio import MinioAdmin
from minio.credentials import StaticProvider
admin = MinioAdmin(endpoint="127.0.0.1:9700", credentials=StaticProvider("benchroot", "benchroot-secret"), secure=False)
admin.user_add("benchuser", "benchuser-secret")
admin.attach_policy(["readwrite"], user="benchuser")
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9700", aws_access_key_id="benchroot",
                  aws_secret_access_key="benchroot-secret", region_name="us-east-1")
acct = json.loads(admin.account_info())["AccountId"]
for b in ("ab-root", "ab-user"):
    s3.create_bucket(Bucket=b)
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:user/benchuser"},
         "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::{b}/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": f"arn:aws:s3:::{b}",
         "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]}))
PY
run() { # workload who bucket
  local key secret
  if [ "$2" = root ]; then key=benchroot; secret=benchroot-secret; else key=benchuser; secret=benchuser-secret; fi
  $BIN bench $1 --endpoint http://127.0.0.1:9700 --access-key $key --secret-key $secret --bucket $3 \
     --size 4KiB --duration 12s --warmup 2s --keep --json
}
for w in ${WORKLOADS:-put get}; do
  for who in ${ORDER:-root user root user}; do
    echo "$w $who $(run $w $who ab-$who)"
  done
done
