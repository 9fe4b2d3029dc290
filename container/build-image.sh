#!/usr/bin/env bash
# Builds the Strata container image as an OCI image archive, with no registry and no daemon:
# a scratch image holding the `strata` binary, the shared libraries it links (found with ldd),
# the machine's CA certificates and a non-root user, assembled by buildah from Debian.
#
#   container/build-image.sh                       # release build, target/image/strata-VERSION.oci.tar
#   container/build-image.sh --binary target/debug/strata --output /tmp/strata.oci.tar
#
# Load it where images are kept: `podman load -i FILE`, `skopeo copy oci-archive:FILE docker://REG/strata:TAG`.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_ROOT/Cargo.toml" | head -1)"
BINARY=""
OUTPUT="$REPO_ROOT/target/image/strata-$VERSION.oci.tar"
TAG="strata:$VERSION"
UID_GID=10001

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) BINARY="$2"; shift 2 ;;
        --output) OUTPUT="$2"; shift 2 ;;
        --tag) TAG="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

command -v buildah >/dev/null 2>&1 || { echo "error: buildah is needed (Debian package buildah)" >&2; exit 1; }
if [ -z "$BINARY" ]; then
    (cd "$REPO_ROOT" && cargo build --release --bin strata)
    BINARY="$REPO_ROOT/target/release/strata"
fi
[ -x "$BINARY" ] || { echo "error: $BINARY is not an executable" >&2; exit 1; }

WORK="$(mktemp -d -t strata-image-XXXXXX)"
# buildah keeps its own storage in the work directory: nothing is left in the machine's.
STORE=(--root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs)
cleanup() {
    buildah "${STORE[@]}" rm --all >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ROOTFS="$WORK/rootfs"
install -D -m 0755 "$BINARY" "$ROOTFS/usr/local/bin/strata"
# The dynamic loader and every library the binary links, at their paths.
ldd "$BINARY" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
    while read -r lib; do
        mkdir -p "$ROOTFS$(dirname "$lib")"
        cp -L "$lib" "$ROOTFS$lib"
    done
install -d -m 0755 "$ROOTFS/etc/ssl/certs"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp -L /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
fi
printf 'root:x:0:0:root:/:/nonexistent\nstrata:x:%d:%d:strata:/data:/nonexistent\n' "$UID_GID" "$UID_GID" > "$ROOTFS/etc/passwd"
printf 'root:x:0:\nstrata:x:%d:\n' "$UID_GID" > "$ROOTFS/etc/group"
printf 'hosts: files dns\n' > "$ROOTFS/etc/nsswitch.conf"
install -d -m 1777 "$ROOTFS/tmp"
install -d -m 0750 -o "$UID_GID" -g "$UID_GID" "$ROOTFS/data"
cp "$REPO_ROOT/container/Containerfile" "$WORK/Containerfile"

mkdir -p "$(dirname "$OUTPUT")"
rm -f "$OUTPUT"
buildah "${STORE[@]}" build --quiet --isolation chroot --timestamp 0 \
    --label "org.opencontainers.image.title=strata" \
    --label "org.opencontainers.image.version=$VERSION" \
    -f "$WORK/Containerfile" -t "$TAG" "$WORK" >/dev/null
buildah "${STORE[@]}" push --quiet "$TAG" "oci-archive:$OUTPUT:$TAG"
echo "$OUTPUT ($TAG, $(du -h "$OUTPUT" | cut -f1))"
