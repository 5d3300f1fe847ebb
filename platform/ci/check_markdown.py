"""A quick check of the repository's Markdown: code fences are closed, relative links and images
point at files that exist, and no merge-conflict markers were left behind.

Usage: python3 platform/ci/check_markdown.py [ROOT]   (default: the current directory)
Prints every problem as FILE:LINE: message and exits 1 when there is any.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import unquote

SKIPPED_DIRECTORIES = {".git", "target", "node_modules", ".terraform", ".venv", "__pycache__"}
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CONFLICT_MARKER = re.compile(r"^(<{7}|={7}|>{7})( |$)")
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")


def markdown_files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*.md")):
        relative_parts = path.relative_to(root).parts
        if not any(part in SKIPPED_DIRECTORIES for part in relative_parts):
            found.append(path)
    return found


def check_text(path: Path, text: str, root: Path) -> list[str]:
    problems = []
    label = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    open_fence: tuple[str, int] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        fence = FENCE.match(line)
        if fence:
            marker = fence.group(1)
            if open_fence is None:
                open_fence = (marker, number)
            elif marker[0] == open_fence[0][0] and len(marker) >= len(open_fence[0]):
                open_fence = None
            continue
        if open_fence is not None:
            continue
        if CONFLICT_MARKER.match(line):
            problems.append(f"{label}:{number}: merge-conflict marker `{line[:7]}`; resolve the conflict")
        for match in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
                continue
            target_path = unquote(target.split("#", 1)[0].split("?", 1)[0])
            base = root if target_path.startswith("/") else path.parent
            if not (base / target_path.lstrip("/")).exists():
                problems.append(f"{label}:{number}: link to `{target}` points at nothing; fix the path")
    if open_fence is not None:
        problems.append(f"{label}:{open_fence[1]}: code fence {open_fence[0]} is never closed; close it with {open_fence[0]}")
    return problems


def main(arguments: list[str]) -> int:
    root = Path(arguments[0] if arguments else ".").resolve()
    files = markdown_files(root)
    problems = [problem for path in files for problem in check_text(path, path.read_text(encoding="utf-8"), root)]
    for problem in problems:
        print(problem)
    print(f"check_markdown: {len(files)} file(s), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
