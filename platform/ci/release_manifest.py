"""Describes what a release of this commit would carry, as JSON: the images to build (context,
Dockerfile, tag), the DAG tree hash, the Terraform environments and the sha256 of every model
pins file. The `package` job prints it; promotion compares it between environments.

Usage: python3 platform/ci/release_manifest.py [ROOT]   (default: the current directory)
The commit comes from $SLUICE_SHA when set (sluice sets it for every step), else "unknown".
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

IMAGES = (
    {"name": "trainer", "context": "platform", "dockerfile": "platform/images/trainer/Dockerfile"},
    {"name": "serving-api", "context": "platform/images/serving-api",
     "dockerfile": "platform/images/serving-api/Dockerfile"},
)


def tree_sha256(folder: Path) -> str:
    """A hash over the relative paths and contents of every file, independent of timestamps."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
    return digest.hexdigest()


def manifest(root: Path, commit: str) -> dict:
    short_sha = commit[:7] if commit != "unknown" else commit
    problems = [image["dockerfile"] for image in IMAGES if not (root / image["dockerfile"]).is_file()]
    if problems:
        raise FileNotFoundError(f"missing Dockerfile(s): {', '.join(problems)}; run from the repository root")
    dags = root / "platform" / "dags"
    return {
        "commit": commit,
        "images": [{**image, "tag": short_sha} for image in IMAGES],
        "dags": {"folder": "platform/dags", "files": sorted(p.name for p in dags.glob("*.py")),
                 "tree_sha256": tree_sha256(dags)},
        "terraform": sorted(p.name for p in (root / "platform" / "infra" / "envs").iterdir() if p.is_dir()),
        "model_pins": {
            p.stem: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "platform" / "models").glob("*.yaml"))
        },
    }


def main(arguments: list[str]) -> int:
    root = Path(arguments[0] if arguments else ".")
    try:
        document = manifest(root, os.environ.get("SLUICE_SHA") or "unknown")
    except OSError as error:
        print(f"release_manifest: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(document, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
