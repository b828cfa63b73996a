"""The package's layout holds: every part imports only the parts below it, and the wheel lists every subpackage.

The parts are folders at the root mapped into `rolesearch` (pyproject.toml's package-dir); the
allowed arrows are ARCHITECTURE.md's diagram. Imports are read with ast, function-local ones
included, so a lazy import cannot hide an arrow the wrong way.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Part -> the parts it may import (itself always). store, encoder and cluster are the bottom; ingest and search
# each stand on them and never on each other; settings configures every stage; api serves search over the
# format (and runs the pipeline for /admin/reindex, reads an article from its source); analytics (what readers
# searched, opened and judged) sits beside search on store and encoder, used by api and cli; the CLI may use anything.
ALLOWED = {
    "cluster": set(),
    "store": set(),
    "encoder": {"cluster"},
    "ingest": {"store", "encoder"},
    "search": {"store", "encoder"},
    "settings": {"store", "encoder", "ingest", "search"},
    "analytics": {"store", "encoder"},
    "api": {"settings", "search", "store", "encoder", "ingest", "cluster", "analytics"},
    "cli": {"settings", "api", "search", "ingest", "store", "encoder", "cluster", "analytics"},
    "root": set(),
}


def _package_dirs() -> tuple[dict[str, Path], list[str]]:
    """pyproject.toml's package-dir (import package -> folder) and its list of packages."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli, the same parser (never a skip)
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    return {name: ROOT / folder for name, folder in config["package-dir"].items()}, config["packages"]


def _part(module: str) -> str | None:
    """The part a rolesearch module belongs to (rolesearch.store.ann -> store), None for other packages."""
    names = module.split(".")
    if names[0] != "rolesearch":
        return None
    if len(names) == 1 or names[1] == "__init__":
        return "root"
    if names[1] == "__main__":  # `python -m rolesearch` is the command line
        return "cli"
    return names[1]


def _module_of(path: Path, dirs: dict[str, Path]) -> str:
    for package, folder in sorted(dirs.items(), key=lambda kv: -len(str(kv[1]))):
        if package.count(".") == 1 and path.is_relative_to(folder):
            rel = path.relative_to(folder).with_suffix("")
            return ".".join([package, *rel.parts]).removesuffix(".__init__")
    rel = path.relative_to(dirs["rolesearch"]).with_suffix("")
    return ".".join(["rolesearch", *rel.parts]).removesuffix(".__init__")


def _imports(path: Path, run_time: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, at any depth; with run_time, not those under
    `if TYPE_CHECKING:` (they are never executed)."""
    out = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = set()
    if run_time:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}:{node.lineno}: relative import; write rolesearch.<part>.<module>"
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _sources() -> list[tuple[Path, str]]:
    dirs, _ = _package_dirs()
    files = []
    for package, folder in dirs.items():
        deep = package == "rolesearch"  # the root package's folder holds modules only; parts are mapped
        for path in (folder.glob("*.py") if deep else folder.rglob("*.py")):
            files.append((path, _module_of(path, dirs)))
    return files


def test_every_part_imports_only_the_parts_below_it():
    wrong = []
    files = _sources()
    assert len(files) > 60, "the layout test found too few modules to judge"
    for path, module in files:
        part = _part(module)
        for line, imported in _imports(path):
            target = _part(imported)
            if imported.split(".")[0] in ("ingest", "search", "api", "store", "encoder", "cli", "analytics"):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {imported} (a top-level name; import rolesearch.*)")
            elif target is not None and target != part and target not in ALLOWED[part]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {part} imports {imported} ({target})")
    assert not wrong, "imports against the allowed directions:\n" + "\n".join(wrong)


def _cycles() -> list[list[str]]:
    """Import circles among the package's modules, counting imports that run (lazy ones too)."""
    files = _sources()
    modules = {m for _, m in files}
    graph: dict[str, set[str]] = {}
    for path, module in files:
        deps = set()
        for _, imported in _imports(path, run_time=True):
            while imported and imported not in modules:  # rolesearch.store.ann.AnnParams -> rolesearch.store.ann
                imported = imported.rpartition(".")[0]
            if imported and imported != module:
                deps.add(imported)
        graph[module] = deps
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_no_module_imports_itself_back():
    """A circle deferred by a function-local import is still a circle: none, anywhere in the package."""
    assert not _cycles(), "import circles:\n" + "\n".join(" -> ".join(c) for c in _cycles())


def test_the_direction_check_sees_a_wrong_arrow(tmp_path):
    """The checker itself: an import from search inside ingest is found, a lazy one too."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from rolesearch.search.searcher import Searcher\n", encoding="utf-8")
    (line, imported), = _imports(bad)
    assert (line, _part(imported)) == (2, "search")
    assert "search" not in ALLOWED["ingest"] and "ingest" not in ALLOWED["search"]


def test_pyproject_lists_every_subpackage():
    """setuptools does not look below a mapped folder by itself: a package left out is missing from the wheel."""
    dirs, listed = _package_dirs()
    found = set()
    for package, folder in dirs.items():
        if package == "rolesearch":
            found.add(package)
            continue
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            found.add(".".join([package, *rel.parts]))
    assert found == set(listed), f"pyproject.toml packages differ: missing {found - set(listed)}, extra {set(listed) - found}"


def test_the_installed_package_is_this_checkout():
    import rolesearch.ingest
    import rolesearch.store

    assert Path(rolesearch.store.__file__).resolve() == ROOT / "store" / "__init__.py"
    assert Path(rolesearch.ingest.__file__).resolve() == ROOT / "ingest" / "__init__.py"
    assert "api" not in sys.modules and "ingest" not in sys.modules, "a bare top-level module was imported"
