#!/usr/bin/env bash
# deploy/build-image.sh — build pdm's image from scratch with buildah, from a
# binary already built (no base image is pulled): the binary, the shared
# libraries it links (as ldd resolves them), /etc/passwd and /etc/group
# naming the nonroot user 65532, and the state directory. The same shape as
# deploy/Containerfile's final stage: no shell, non-root, read-only root.
#
#   cargo build --release && deploy/build-image.sh [BINARY] [IMAGE]
#
# BINARY defaults to target/release/pdm, IMAGE to localhost/pdm:dev. Prints
# the image id. Needs buildah (Debian: buildah), ldd and objcopy.
set -euo pipefail

BIN=${1:-target/release/pdm}
IMAGE=${2:-localhost/pdm:dev}
[[ -x $BIN ]] || { echo "build-image.sh: no executable at $BIN (cargo build --release first)" >&2; exit 1; }

WORK=$(mktemp -d)
ctr=
cleanup() {
    [[ -n $ctr ]] && buildah rm "$ctr" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The binary without its debug sections (a debug build is hundreds of MB).
objcopy --strip-debug "$BIN" "$WORK/pdm"

mkdir -p "$WORK/root/etc" "$WORK/root/var/lib/pdm" "$WORK/root/tmp"
cat > "$WORK/root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat > "$WORK/root/etc/group" <<'GROUP'
root:x:0:
nonroot:x:65532:
GROUP

ctr=$(buildah from scratch)
buildah copy --quiet "$ctr" "$WORK/root/etc" /etc >/dev/null
buildah copy --quiet --chown 65532:65532 "$ctr" "$WORK/root/var/lib/pdm" /var/lib/pdm >/dev/null
buildah copy --quiet --chmod 1777 "$ctr" "$WORK/root/tmp" /tmp >/dev/null
buildah copy --quiet --chmod 0755 "$ctr" "$WORK/pdm" /usr/local/bin/pdm >/dev/null
# Each library at the path the binary's loader looks for it, symlinks resolved.
ldd "$BIN" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}' | sort -u | while read -r lib; do
    buildah copy --quiet "$ctr" "$(readlink -f "$lib")" "$lib" >/dev/null
done
buildah config \
    --user 65532:65532 \
    --workingdir /var/lib/pdm \
    --volume /var/lib/pdm \
    --env PDM_HTTP=0.0.0.0:8080 \
    --env PDM_DNS=0.0.0.0:53 \
    --env PDM_DATABASE_URL=sqlite:///var/lib/pdm/pdm.db \
    --env PDM_LOG_FORMAT=json \
    --port 53/udp --port 53/tcp --port 8080/tcp \
    --entrypoint '["/usr/local/bin/pdm"]' \
    --cmd serve \
    --label org.opencontainers.image.title=pdm \
    --label org.opencontainers.image.source=https://github.com/openova-io/pdm \
    "$ctr"
buildah commit --quiet --rm "$ctr" "$IMAGE"
ctr=
