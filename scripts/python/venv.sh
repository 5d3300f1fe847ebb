# Sourced by the setup-*.sh scripts: one pinned Python virtual environment per tool.
#
# Each environment NAME has two files beside this one:
#   NAME.in   what is asked for (the tool, and caps we know it needs)
#   NAME.txt  every package and version of an environment that passed the tests (`pip freeze`)
# `ensure_venv NAME DIR` reuses DIR only when it holds exactly what NAME.txt pins; otherwise it
# rebuilds it with `pip install -r NAME.in --constraint NAME.txt`, so every machine gets the same
# versions whatever PyPI's newest are. scripts/refresh-python-constraints.sh NAME makes NAME.txt anew.
#
# The caller defines `say` and `fail` and runs from the repository's root.

python_dir="scripts/python"

venv_satisfies() {
    local venv_dir=$1 constraints=$2
    [ -x "${venv_dir}/bin/python" ] &&
        "${venv_dir}/bin/python" "${python_dir}/satisfies.py" "${constraints}" >/dev/null 2>&1
}

ensure_python_venv_support() {
    command -v python3 >/dev/null || fail "python3 is missing; install it (apt-get install python3) and run again"
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        [ "$(id -u)" = 0 ] || fail "python3 cannot create virtual environments; run as root or install python3-venv"
        say "installing python3-venv"
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    fi
}

# ensure_venv NAME DIR: DIR holds exactly ${python_dir}/NAME.txt afterwards, or the script fails.
ensure_venv() {
    local name=$1 venv_dir=$2
    local requirements="${python_dir}/${name}.in" constraints="${python_dir}/${name}.txt"
    [ -r "${requirements}" ] && [ -r "${constraints}" ] ||
        fail "${requirements} or ${constraints} is missing; restore them from git"
    if venv_satisfies "${venv_dir}" "${constraints}"; then
        say "${venv_dir} matches ${constraints}"
        return 0
    fi
    if [ -e "${venv_dir}" ]; then
        say "rebuilding ${venv_dir}: it does not match ${constraints}; first differences:"
        "${venv_dir}/bin/python" "${python_dir}/satisfies.py" "${constraints}" 2>&1 | head -n 5 | sed 's/^/    /' >&2 || true
    fi
    ensure_python_venv_support
    rm -rf "${venv_dir}"
    python3 -m venv "${venv_dir}"
    say "installing ${requirements} with ${constraints} into ${venv_dir}"
    "${venv_dir}/bin/pip" install --quiet --disable-pip-version-check \
        -r "${requirements}" --constraint "${constraints}" >&2 ||
        fail "pip could not install ${requirements} with ${constraints}; check that PyPI is reachable"
    if ! venv_satisfies "${venv_dir}" "${constraints}"; then
        "${venv_dir}/bin/python" "${python_dir}/satisfies.py" "${constraints}" >&2 || true
        fail "${venv_dir} does not match ${constraints} after installing; refresh it with scripts/refresh-python-constraints.sh ${name}"
    fi
}
