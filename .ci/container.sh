#!/usr/bin/env bash
# Build and test the dropnet image with podman on a machine without Docker or registry access.
#
#   .ci/container.sh setup        install podman, runc, mmdebstrap and uidmap (when missing)
#                                 and build the base image (when missing)
#   .ci/container.sh build [TAG]  setup, then build TAG (default dropnet:ci) from a clean export
#                                 of HEAD (uncommitted changes are not in the image)
#   .ci/container.sh test         setup, then the container tests (pytest -m container), which
#                                 build the image through `build` themselves
#   .ci/container.sh              the same as `test`
#
# Idempotent: packages and the base image are reused when present; podman reuses cached layers.
# The base image is Debian bookworm's python3 (from mmdebstrap) imported under the official
# name python:3.11-slim-bookworm, so the Dockerfile's FROM stays the official image elsewhere.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE_IMAGE=python:3.11-slim-bookworm
# The sandbox refuses podman's default runtime (crun) and rlimits; containers share the host's
# network (no bridge networking here).
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network host)

log() { echo "container.sh: $*" >&2; }

install_packages() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    command -v newuidmap >/dev/null || missing+=(uidmap)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get install -y -q "${missing[@]}" >/dev/null \
            || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
    fi
}

build_base_image() {
    if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
        return 0
    fi
    log "building $BASE_IMAGE from Debian bookworm packages (mmdebstrap)"
    local tarball
    tarball="$(mktemp --suffix=.tar)"
    # Like the official slim image: python3 with pip and venv, CA certificates, no compiler, no
    # recommended packages, no documentation, manuals or translations, no apt lists, no perl
    # (usr-is-merged instead of usrmerge); pip may install into the system (no EXTERNALLY-MANAGED).
    mmdebstrap --quiet --variant=minbase --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,usr-is-merged \
        --customize-hook='rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        bookworm "$tarball"
    "${PODMAN[@]}" import --quiet --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' \
        "$tarball" "$BASE_IMAGE" >/dev/null
    rm -f "$tarball"
}

setup() {
    install_packages
    build_base_image
}

build() {
    local tag="${1:-dropnet:ci}" context pip_conf
    setup
    context="$(mktemp -d)"
    pip_conf="$(mktemp)"
    trap 'rm -rf "$context" "$pip_conf"' RETURN
    if [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]]; then
        log "warning: uncommitted changes are not in the image (it is built from HEAD)"
    fi
    git -C "$ROOT" archive HEAD | tar -x -C "$context"
    # pip in the build reaches the index through this machine's proxy with this machine's CA
    # bundle: both are build secrets, mounted for the pip install only, so neither ends up in
    # the image (a --volume would leave its mount point in every stage). --format docker keeps
    # the HEALTHCHECK (the OCI format has none).
    printf '[global]\ncert = /run/secrets/ca.crt\n' >"$pip_conf"
    log "building $tag from $(git -C "$ROOT" rev-parse --short HEAD)"
    "${PODMAN[@]}" build --pull=never --format docker "${LIMITS[@]}" \
        --secret id=pip.conf,src="$pip_conf" --secret id=ca.crt,src=/etc/ssl/certs/ca-certificates.crt \
        --tag "$tag" "$context" >&2
    log "$tag: $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$tag") bytes"
}

run_tests() {
    setup
    cd "$ROOT"
    .venv/bin/pytest -n 0 -m container tests/container "$@"
}

command="${1:-test}"
shift || true
case "$command" in
    setup) setup ;;
    build) build "$@" ;;
    test) run_tests "$@" ;;
    *) echo "usage: $0 [setup|build [TAG]|test [PYTEST ARGS]]" >&2; exit 2 ;;
esac
