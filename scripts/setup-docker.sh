#!/usr/bin/env bash
# Makes a working Docker engine on a fresh Debian 12 machine, as root, and the local base image
# `local/busybox:1` that image builds and container steps use when no registry can be reached.
#
# Idempotent: every step first checks whether its result is already there.
#   1. install `docker.io` and `busybox-static` if missing;
#   2. start `dockerd` in the background (log: /var/log/dockerd.log) unless the socket answers;
#   3. wait, bounded, until `docker info` answers;
#   4. build `local/busybox:1` by `docker import` of a rootfs holding busybox and its applet
#      links, unless the image exists;
#   5. run one container from it to prove the engine works end to end.
#
# Settings (environment):
#   SLUICE_DOCKER_SOCKET        engine socket            (default /var/run/docker.sock)
#   SLUICE_DOCKER_LOG           dockerd log file         (default /var/log/dockerd.log)
#   SLUICE_DOCKER_WAIT_SECONDS  how long to wait         (default 60)
#   SLUICE_DOCKERD_ARGS         extra dockerd arguments  (default none)
#   SLUICE_BUSYBOX_IMAGE        base image name          (default local/busybox:1)
set -euo pipefail

docker_socket="${SLUICE_DOCKER_SOCKET:-/var/run/docker.sock}"
dockerd_log="${SLUICE_DOCKER_LOG:-/var/log/dockerd.log}"
wait_seconds="${SLUICE_DOCKER_WAIT_SECONDS:-60}"
busybox_image="${SLUICE_BUSYBOX_IMAGE:-local/busybox:1}"
busybox_binary=/bin/busybox

say() { echo "setup-docker: $*"; }
fail() {
    echo "setup-docker: error: $*" >&2
    exit 1
}

export DOCKER_HOST="unix://${docker_socket}"

engine_answers() { docker info >/dev/null 2>&1; }

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        fail "$1 needs root; run this script as root (e.g. sudo $0)"
    fi
}

install_packages() {
    local missing_packages=()
    command -v dockerd >/dev/null 2>&1 || missing_packages+=(docker.io)
    package_installed busybox-static || missing_packages+=(busybox-static)
    if [ "${#missing_packages[@]}" -eq 0 ]; then
        say "packages docker.io and busybox-static already installed"
        return
    fi
    require_root "installing ${missing_packages[*]}"
    say "installing ${missing_packages[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || fail "apt-get update failed; check the machine's apt sources and network"
    apt-get install -y -qq --no-install-recommends "${missing_packages[@]}" ||
        fail "apt-get install ${missing_packages[*]} failed; see the apt output above"
    command -v docker >/dev/null 2>&1 || fail "no docker client on PATH after installing docker.io"
}

# Inside a container (a CI runner, a fresh-machine check) the cgroup v1 hierarchies are mounted
# read-only, and runc cannot create a container's cgroup. Mount writable ones in their place, as
# Docker-in-Docker images do, and keep this engine's containers under their own cgroup parent.
cgroup_parent_arg=""
make_cgroups_writable() {
    local hierarchy name
    grep -q ' /sys/fs/cgroup/[^ ]* cgroup ro,' /proc/mounts 2>/dev/null || return 0
    say "cgroup hierarchies are read-only (running inside a container); mounting writable ones"
    for hierarchy in /sys/fs/cgroup/*; do
        grep -q " ${hierarchy} cgroup ro," /proc/mounts || continue
        name=$(basename "${hierarchy}")
        umount "${hierarchy}" || fail "cannot unmount ${hierarchy}; run the container with CAP_SYS_ADMIN"
        if [ "${name}" = systemd ]; then
            mount -t cgroup -o none,name=systemd cgroup "${hierarchy}"
        else
            mount -t cgroup -o "${name}" cgroup "${hierarchy}"
        fi || fail "cannot mount the ${name} cgroup hierarchy writable"
    done
    cgroup_parent_arg="--cgroup-parent=/sluice-nested-docker"
}

start_engine() {
    if engine_answers; then
        say "docker engine already answers on ${docker_socket}"
        return
    fi
    require_root "starting dockerd"
    say "starting dockerd in the background (log: ${dockerd_log})"
    mkdir -p "$(dirname "${dockerd_log}")"
    # A pid file left by a dockerd that died would stop the new one from starting.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        say "removing stale /var/run/docker.pid"
        rm -f /var/run/docker.pid
    fi
    # setsid: the engine must outlive this script and the shell that ran it.
    # shellcheck disable=SC2086 # SLUICE_DOCKERD_ARGS is a list of words on purpose
    make_cgroups_writable
    setsid dockerd --host "unix://${docker_socket}" ${cgroup_parent_arg} ${SLUICE_DOCKERD_ARGS:-} \
        >>"${dockerd_log}" 2>&1 </dev/null &
    local dockerd_pid=$!
    say "dockerd started as pid ${dockerd_pid}; waiting up to ${wait_seconds}s for it to answer"
    local waited_seconds=0
    until engine_answers; do
        if ! kill -0 "${dockerd_pid}" 2>/dev/null; then
            echo "--- last lines of ${dockerd_log} ---" >&2
            tail -n 20 "${dockerd_log}" >&2 || true
            fail "dockerd exited before answering; read ${dockerd_log} for the cause"
        fi
        if [ "${waited_seconds}" -ge "${wait_seconds}" ]; then
            fail "dockerd did not answer on ${docker_socket} within ${wait_seconds}s; read ${dockerd_log}, or raise SLUICE_DOCKER_WAIT_SECONDS"
        fi
        sleep 1
        waited_seconds=$((waited_seconds + 1))
    done
    say "docker engine answers after ${waited_seconds}s"
}

build_busybox_image() {
    # Steps run as an unprivileged user, so the image's root must be readable by anyone: an image
    # imported from a 0700 directory (older engines keep that mode) is rebuilt.
    if docker image inspect "${busybox_image}" >/dev/null 2>&1; then
        if docker run --rm --user 65534:65534 "${busybox_image}" true >/dev/null 2>&1; then
            say "image ${busybox_image} already present"
            return
        fi
        say "image ${busybox_image} cannot run as an unprivileged user; rebuilding it"
        docker image rm -f "${busybox_image}" >/dev/null
    fi
    [ -x "${busybox_binary}" ] || fail "${busybox_binary} is missing; install busybox-static"
    say "building ${busybox_image} from ${busybox_binary} by docker import"
    local rootfs_directory
    rootfs_directory="$(mktemp -d)"
    chmod 0755 "${rootfs_directory}"
    # shellcheck disable=SC2064 # expand the directory now, not at exit
    trap "rm -rf '${rootfs_directory}'" EXIT
    mkdir -p "${rootfs_directory}"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,home}
    chmod 1777 "${rootfs_directory}/tmp" "${rootfs_directory}/var/tmp"
    cp "${busybox_binary}" "${rootfs_directory}/bin/busybox"
    local applet_path
    local applet_count=0
    # `--list-full` names each applet with its usual directory, e.g. `usr/bin/wget`.
    while read -r applet_path; do
        [ -n "${applet_path}" ] || continue
        [ "${applet_path}" = "bin/busybox" ] && continue
        mkdir -p "${rootfs_directory}/$(dirname "${applet_path}")"
        ln -sf /bin/busybox "${rootfs_directory}/${applet_path}"
        applet_count=$((applet_count + 1))
    done < <("${busybox_binary}" --list-full)
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"${rootfs_directory}/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"${rootfs_directory}/etc/group"
    say "rootfs has busybox and ${applet_count} applet links"
    tar -C "${rootfs_directory}" -c . |
        docker import \
            --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["/bin/sh"]' \
            - "${busybox_image}" >/dev/null ||
        fail "docker import of the busybox rootfs failed; read ${dockerd_log}"
    rm -rf "${rootfs_directory}"
    trap - EXIT
    say "image ${busybox_image} built"
}

check_container_runs() {
    local container_output
    container_output="$(docker run --rm "${busybox_image}" sh -c 'echo container-ok' 2>&1)" ||
        fail "a container from ${busybox_image} did not run: ${container_output}; read ${dockerd_log}"
    [ "${container_output}" = "container-ok" ] ||
        fail "a container from ${busybox_image} printed '${container_output}' instead of 'container-ok'"
    say "a container from ${busybox_image} runs"
}

install_packages
start_engine
build_busybox_image
check_container_runs
say "done: docker engine on ${docker_socket}, base image ${busybox_image}"
