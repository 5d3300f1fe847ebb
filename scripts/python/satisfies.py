"""Tells whether the running interpreter's environment is exactly what a constraints file pins.

usage: VENV/bin/python scripts/python/satisfies.py CONSTRAINTS_FILE

Exit 0 when every `name==version` line of the file is installed at that version and nothing else
is installed (pip, setuptools and wheel aside); exit 1 with one line per difference otherwise. The
setup scripts rebuild a virtual environment that does not satisfy its file instead of reusing it.
"""

import importlib.metadata
import re
import sys

IGNORED = {"pip", "setuptools", "wheel", "pkg-resources"}


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(path):
    pins = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, separator, version = line.partition("==")
            if not separator:
                sys.exit(f"{path}:{number}: `{line}` is not `name==version`; regenerate the file with scripts/refresh-python-constraints.sh")
            pins[normalise(name.split("[", 1)[0].strip())] = version.split(";", 1)[0].strip()
    return pins


def installed():
    found = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            found[normalise(name)] = distribution.version
    return found


def main():
    path = sys.argv[1]
    pins, present = pinned(path), installed()
    problems = []
    for name, version in sorted(pins.items()):
        if name not in present:
            problems.append(f"{name}=={version} is pinned but not installed")
        elif present[name] != version:
            problems.append(f"{name} is {present[name]}, {path} pins {version}")
    for name in sorted(set(present) - set(pins) - IGNORED):
        problems.append(f"{name} {present[name]} is installed but not pinned in {path}")
    for problem in problems:
        print(problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
