#!/usr/bin/env bash
# The release bundle for a closed network, made by one command:
#   docker/release.sh [OUTPUT_DIR]          (default: dist)
# It builds the image and writes into OUTPUT_DIR:
#   consultation-appliance-VERSION.tar.gz           the image (docker save), for `docker load`
#   consultation-appliance-VERSION.sbom.cdx.json    its software bill of materials (CycloneDX JSON)
#   compose.yaml                                    the example deployment
#   SHA256SUMS                                      checksums of the above (sha256sum -c SHA256SUMS)
# Environment: BASE_IMAGE (default python:3.12-slim), BUILD_NETWORK (docker build --network),
# EXTRA_CA_CERTS (PEM text: authorities pip trusts during the build, for a TLS-inspecting proxy).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-dist}
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' appliance/__init__.py)
[ -n "$VERSION" ] || { echo "release.sh: no __version__ in appliance/__init__.py" >&2; exit 1; }
NAME="consultation-appliance-$VERSION"
TAG="consultation-appliance:$VERSION"

build=(docker build --quiet -f docker/Dockerfile -t "$TAG")
[ -n "${BASE_IMAGE:-}" ] && build+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
[ -n "${BUILD_NETWORK:-}" ] && build+=(--network "$BUILD_NETWORK")
[ -n "${EXTRA_CA_CERTS:-}" ] && build+=(--build-arg "EXTRA_CA_CERTS=$EXTRA_CA_CERTS")
echo "==> building $TAG"
"${build[@]}" . >/dev/null

mkdir -p "$OUT"
echo "==> saving the image to $OUT/$NAME.tar.gz"
docker save "$TAG" | gzip -6 > "$OUT/$NAME.tar.gz"
container=$(docker create "$TAG")
trap 'docker rm -v "$container" >/dev/null' EXIT
docker cp "$container:/opt/appliance/sbom.cdx.json" "$OUT/$NAME.sbom.cdx.json" >/dev/null
cp docker/compose.yaml "$OUT/compose.yaml"
(cd "$OUT" && sha256sum "$NAME.tar.gz" "$NAME.sbom.cdx.json" compose.yaml > SHA256SUMS)

echo "==> done: $OUT"
echo "    on the target machine: sha256sum -c SHA256SUMS && docker load -i $NAME.tar.gz"
