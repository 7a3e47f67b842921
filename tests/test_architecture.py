"""The house rules that keep Lectern simple, checked on the source itself.

- services modules import each other without a circle (imports inside functions count too: a
  call-time import is how a circle hides);
- the layers point one way: routes -> services -> models; services and models never reach for
  the request, the session, templates or a blueprint;
- no file in webapp/ grows past 450 lines (a bigger one is two modules);
- templates never read request headers or the query string (the route passes what they need);
- guards live in services/access.py only, commits only in the unit of work.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEBAPP = ROOT / "webapp"
SERVICES = WEBAPP / "services"
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, as absolute dotted names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # ``from . import audit`` imports the submodule webapp.services.audit
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _graph(paths) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in paths}
    return {name: _imports(path) & set(modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_services_modules_import_each_other_without_a_circle():
    graph = _graph(p for p in SERVICES.glob("*.py") if p.name != "__init__.py")
    assert _cycle(graph) is None


def test_no_circle_between_the_modules_of_webapp():
    # Package __init__ files are wiring (create_app, a blueprint's ``from . import routes``).
    graph = _graph(p for p in WEBAPP.rglob("*.py") if p.name != "__init__.py")
    assert _cycle(graph) is None


def test_layers_point_one_way():
    web_layers = ("webapp.auth", "webapp.authoring", "webapp.learning", "webapp.teaching")
    web_layers += ("webapp.admin", "webapp.site", "webapp.errors", "webapp.htmx", "webapp.api")
    for path in list(SERVICES.glob("*.py")) + [WEBAPP / "models.py"]:
        imported = _imports(path)
        text = path.read_text()
        for module in imported:
            assert not module.startswith(web_layers), f"{path.name} imports {module}"
        assert not re.search(
            r"\bfrom flask import [^\n]*\b(request|session|render_template)\b", text
        ), path.name
    models = _imports(WEBAPP / "models.py")
    assert not any(m.startswith("webapp.services") for m in models)


def test_no_file_in_webapp_is_over_450_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in WEBAPP.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_templates_do_not_read_the_request_headers_or_query_string():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "templates").rglob("*.html")
        if re.search(r"request\.(headers|args|form|values)", p.read_text())
    ]
    assert offenders == []


def test_guards_live_in_access_and_commits_in_the_unit_of_work():
    for path in WEBAPP.rglob("*.py"):
        rel = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and re.fullmatch(
                r"(course|section|block|completion|student|user)_for_\w+", node.name
            ):
                assert rel == "webapp/services/access.py", f"guard {node.name} in {rel}"
        if rel in ("webapp/services/__init__.py", "webapp/mail.py"):
            continue  # the unit of work itself; the outbox worker's loop owns its transactions
        text = path.read_text()
        for call in ("db.session.commit()", "db.session.rollback()", "expire_all()"):
            assert call not in text, f"{call} in {rel}"
