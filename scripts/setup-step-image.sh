#!/usr/bin/env bash
# Builds `local/sluice-step:1`, the image the example platform's `run:` steps execute in (sluice
# runs every step in a container by default): the local Python base image (scripts/setup-python-base.sh)
# plus the host's `terraform`, so the pipeline's Python tests, DAG checks and Terraform fmt/validate
# run in it without reaching a public registry.
#
# Idempotent: does nothing when the image exists with the same terraform binary. Needs a running
# engine (scripts/setup-docker.sh) and the base image.
#
# Settings (environment):
#   SLUICE_STEP_IMAGE      image name          (default local/sluice-step:1)
#   SLUICE_PYTHON_IMAGE    base image          (default local/python:3.11)
set -euo pipefail
cd "$(dirname "$0")/.."

step_image="${SLUICE_STEP_IMAGE:-local/sluice-step:1}"
python_image="${SLUICE_PYTHON_IMAGE:-local/python:3.11}"

say() { echo "setup-step-image: $*"; }
fail() {
    echo "setup-step-image: error: $*" >&2
    exit 1
}

docker info >/dev/null 2>&1 || fail "the docker engine does not answer; run scripts/setup-docker.sh first"
docker image inspect "${python_image}" >/dev/null 2>&1 ||
    fail "base image ${python_image} is missing; run scripts/setup-python-base.sh first"
terraform_binary="$(command -v terraform)" ||
    fail "terraform is not on PATH; install Terraform 1.5 or newer and run again"
terraform_sha256="$(sha256sum "${terraform_binary}" | cut -d' ' -f1)"
if [ "$(docker image inspect --format '{{ index .Config.Labels "dev.sluice.terraform-sha256" }}' "${step_image}" 2>/dev/null)" = "${terraform_sha256}" ] &&
    docker run --rm --user 65534:65534 "${step_image}" terraform version >/dev/null 2>&1; then
    say "image ${step_image} already present"
    exit 0
fi
context="$(mktemp -d)"
trap 'rm -rf "${context}"' EXIT
cp "${terraform_binary}" "${context}/terraform"
cat >"${context}/Dockerfile" <<DOCKERFILE
FROM ${python_image}
COPY terraform /usr/local/bin/terraform
LABEL dev.sluice.terraform-sha256=${terraform_sha256}
ENV HOME=/tmp CHECKPOINT_DISABLE=1
DOCKERFILE
say "building ${step_image} from ${python_image} and ${terraform_binary}"
docker build --quiet --tag "${step_image}" "${context}" >"${context}/build.log" 2>&1 || { cat "${context}/build.log" >&2; fail "docker build of ${step_image} failed"; }
output="$(docker run --rm --user 65534:65534 "${step_image}" sh -c 'python3 --version && terraform version | head -n 1' 2>&1)" ||
    fail "a container from ${step_image} did not run python3 and terraform: ${output}"
say "done: ${step_image} ($(echo "${output}" | tr '\n' ' '))"
