#!/usr/bin/env bash
# Builds the local base image `local/python:3.11` (Debian 12 minbase with python3) so that the
# example platform's images (platform/images/*) build where no public registry is reachable:
#   docker build --build-arg BASE_IMAGE=local/python:3.11 ...
#
# Idempotent: does nothing when the image exists. Needs a running engine (scripts/setup-docker.sh)
# and root. Uses debootstrap with the Debian mirror the machine's apt sources already name.
#
# Settings (environment):
#   SLUICE_PYTHON_IMAGE    image name                      (default local/python:3.11)
#   SLUICE_DEBIAN_MIRROR   mirror URL                      (default: from /etc/apt/sources*)
#   SLUICE_DEBIAN_SUITE    suite                           (default bookworm)
set -euo pipefail

python_image="${SLUICE_PYTHON_IMAGE:-local/python:3.11}"
debian_suite="${SLUICE_DEBIAN_SUITE:-bookworm}"

say() { echo "setup-python-base: $*"; }
fail() {
    echo "setup-python-base: error: $*" >&2
    exit 1
}

# The first main-archive URI in the apt sources (deb822 `.sources` files or one-line `.list`).
apt_mirror() {
    local sources_file
    for sources_file in /etc/apt/sources.list.d/*.sources; do
        [ -r "${sources_file}" ] || continue
        awk -v suite="${debian_suite}" '
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = uri }
            /^$/ { if (found) { print found; exit } uri = "" }
            END { if (found) print found }
        ' "${sources_file}" | head -n 1
    done | head -n 1
    if [ -r /etc/apt/sources.list ]; then
        awk -v suite="${debian_suite}" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list
    fi
}

command -v docker >/dev/null 2>&1 || fail "no docker client; run scripts/setup-docker.sh first"
docker info >/dev/null 2>&1 || fail "the docker engine does not answer; run scripts/setup-docker.sh first"
# Steps run as an unprivileged user, so the image's root must be readable by anyone: an image
# imported from a 0700 directory (older engines keep that mode) is rebuilt.
if docker image inspect "${python_image}" >/dev/null 2>&1; then
    if docker run --rm --user 65534:65534 "${python_image}" python3 -c pass >/dev/null 2>&1; then
        say "image ${python_image} already present"
        exit 0
    fi
    say "image ${python_image} cannot run as an unprivileged user; rebuilding it"
    docker image rm -f "${python_image}" >/dev/null
fi
[ "$(id -u)" -eq 0 ] || fail "debootstrap needs root; run this script as root"

if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || fail "apt-get update failed; check the machine's apt sources and network"
    apt-get install -y -qq --no-install-recommends debootstrap ||
        fail "apt-get install debootstrap failed; see the apt output above"
fi

debian_mirror="${SLUICE_DEBIAN_MIRROR:-$(apt_mirror | head -n 1)}"
[ -n "${debian_mirror}" ] ||
    fail "found no ${debian_suite} mirror in /etc/apt/sources*; set SLUICE_DEBIAN_MIRROR"

rootfs_directory="$(mktemp -d)"
chmod 0755 "${rootfs_directory}"
trap 'rm -rf "${rootfs_directory}"' EXIT
say "debootstrap ${debian_suite} (minbase + python3) into ${rootfs_directory}; this takes a minute or two"
debootstrap --variant=minbase --include=python3,ca-certificates "${debian_suite}" \
    "${rootfs_directory}" "${debian_mirror}" >"${rootfs_directory}.log" 2>&1 || {
    tail -n 20 "${rootfs_directory}.log" >&2
    fail "debootstrap failed; the full log is ${rootfs_directory}.log"
}
rm -f "${rootfs_directory}.log"
# What an image does not need: package caches, documentation, manuals.
rm -rf "${rootfs_directory}"/var/cache/apt/archives/*.deb "${rootfs_directory}"/var/lib/apt/lists/* \
    "${rootfs_directory}"/usr/share/doc/* "${rootfs_directory}"/usr/share/man/*
python_version="$(chroot "${rootfs_directory}" python3 --version 2>&1)" ||
    fail "python3 does not run inside the new rootfs: ${python_version}"
say "rootfs has ${python_version}; importing it as ${python_image}"
tar --numeric-owner -C "${rootfs_directory}" -c . |
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "${python_image}" >/dev/null ||
    fail "docker import of the rootfs failed; read /var/log/dockerd.log"
container_output="$(docker run --rm "${python_image}" python3 -c 'import http.server, json; print("python-ok")' 2>&1)" ||
    fail "a container from ${python_image} did not run python3: ${container_output}"
[ "${container_output}" = "python-ok" ] || fail "python3 in ${python_image} printed '${container_output}'"
say "done: ${python_image} (${python_version})"
