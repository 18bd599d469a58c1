#!/usr/bin/env bash
# Build btk's minimal Debian base image from a debootstrapped root file system (no registry needed).
#
#   bash containers/base/build.sh [IMAGE]      (default IMAGE: btk-base:bookworm)
#
# The image holds what a Python application needs: python3 with numpy, venv and pip, and CA certificates.
# btk's test images and the btk-unet image start `FROM ${BASE_IMAGE}` and get this image through
# `--build-arg BASE_IMAGE=btk-base:bookworm` (`btk algorithms build btk-unet --base-image btk-base:bookworm`).
# On a machine that can reach Docker Hub, debian:bookworm-slim plus these packages does the same.
# Nothing happens when IMAGE exists already. Needs root, debootstrap and a running Docker engine;
# BTK_DEBIAN_MIRROR overrides the Debian mirror.
set -euo pipefail
image="${1:-btk-base:bookworm}"
mirror="${BTK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="python3-minimal,python3-numpy,python3-venv,python3-pip,ca-certificates"
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image exists already"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
rootfs="$(mktemp -d /var/tmp/btk-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
echo "debootstrap bookworm ($packages) from $mirror ..." >&2
if ! debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
  tail -20 "$rootfs.log" >&2
  exit 1
fi
# The image's own apt sources (for images that add packages), without the download caches and docs.
echo "deb $mirror bookworm main" >"$rootfs/etc/apt/sources.list"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
tar --numeric-owner -C "$rootfs" -c . \
  | docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$image" >/dev/null
echo "built $image"
