"""Static checks of Airflow DAG files that need no Airflow: every file compiles, every DAG names
an owner, a dag_id, a schedule and max_active_runs, and nothing runs at import time that would
slow down the scheduler's parsing (Airflow Variable lookups, network calls, reading files).

Usage: python3 platform/ci/check_dags.py [DAG_FOLDER]   (default platform/dags)
Prints every problem as FILE:LINE: message and exits 1 when there is any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REQUIRED_DAG_ARGUMENTS = ("dag_id", "schedule", "max_active_runs")
# Calls that must not run while the scheduler parses the file.
IMPORT_TIME_CALLS = {
    ("Variable", "get"): "reads an Airflow Variable at parse time; read it inside a task",
    ("requests", "get"): "makes a network call at parse time; do it inside a task",
    ("requests", "post"): "makes a network call at parse time; do it inside a task",
    ("urllib.request", "urlopen"): "makes a network call at parse time; do it inside a task",
    ("pd", "read_csv"): "reads data at parse time; do it inside a task",
}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _is_dag_constructor(call: ast.Call) -> bool:
    return _dotted(call.func) in ("DAG", "airflow.DAG", "airflow.sdk.DAG", "models.DAG")


def _keywords(call: ast.Call) -> dict[str, ast.AST]:
    return {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}


def _has_owner(arguments: dict[str, ast.AST], module_assignments: dict[str, ast.AST]) -> bool:
    default_args = arguments.get("default_args")
    if isinstance(default_args, ast.Name):
        default_args = module_assignments.get(default_args.id)
    if isinstance(default_args, ast.Dict):
        for key, value in zip(default_args.keys, default_args.values):
            if isinstance(key, ast.Constant) and key.value == "owner":
                return not (isinstance(value, ast.Constant) and value.value in ("", "airflow"))
    return "owner" in arguments


def _module_level_calls(tree: ast.Module):
    """Calls that run at import: everything outside function bodies."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            # Decorators and defaults run at import; bodies do not.
            pending.extend(getattr(node, "decorator_list", []))
            continue
        if isinstance(node, ast.Call):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def check_source(path: str, source: str) -> list[str]:
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as error:
        return [f"{path}:{error.lineno}: does not compile: {error.msg}"]
    problems = []
    module_assignments = {
        target.id: statement.value
        for statement in tree.body
        if isinstance(statement, ast.Assign)
        for target in statement.targets
        if isinstance(target, ast.Name)
    }
    dag_calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and _is_dag_constructor(node)]
    if not dag_calls:
        problems.append(f"{path}:1: defines no DAG; DAG folders hold only DAG files")
    for call in dag_calls:
        arguments = _keywords(call)
        for required in REQUIRED_DAG_ARGUMENTS:
            if required not in arguments:
                problems.append(f"{path}:{call.lineno}: DAG(...) has no `{required}=`; set it explicitly")
        if not _has_owner(arguments, module_assignments):
            problems.append(
                f"{path}:{call.lineno}: DAG(...) names no owner; set default_args={{\"owner\": \"<team>\"}}"
            )
    for call in _module_level_calls(tree):
        name = _dotted(call.func)
        for (receiver, method), reason in IMPORT_TIME_CALLS.items():
            if name == f"{receiver}.{method}":
                problems.append(f"{path}:{call.lineno}: `{name}(...)` {reason}")
    return sorted(problems, key=lambda problem: (problem.split(":")[0], int(problem.split(":")[1])))


def main(arguments: list[str]) -> int:
    folder = Path(arguments[0] if arguments else "platform/dags")
    files = sorted(folder.glob("*.py"))
    if not files:
        print(f"check_dags: no DAG files in {folder}; pass the DAG folder", file=sys.stderr)
        return 1
    problems = [problem for file in files for problem in check_source(str(file), file.read_text())]
    for problem in problems:
        print(problem)
    print(f"check_dags: {len(files)} file(s), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
