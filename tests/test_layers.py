"""The harness's layers, read from the source (every import statement, those inside functions included, and
``importlib.import_module("...")`` with a literal name): no import cycle between the parts of ``reproduce`` (its
sub-packages and top-level modules), ``runs`` at the bottom, the documented direction
``cli -> {tables, experiments} -> engine -> {methods, tasks} -> runs``, ``models`` / ``datasets`` / ``mwam_harness``
never importing ``reproduce``, and a trainer that names no plug-in."""

import ast
import io
import itertools
import tokenize
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in it (relative imports resolved)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module or "")
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append(node.args[0].value)
    return names


def part(module: str) -> str | None:
    """The part of ``reproduce`` a module belongs to (its sub-package or top-level module), None outside it."""
    pieces = module.split(".")
    if pieces[0] != "reproduce":
        return None
    return pieces[1] if len(pieces) > 1 else "__init__"


def graph() -> dict[str, dict[str, list[str]]]:
    """part -> imported part -> the import lines that make the edge."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in (ROOT / "reproduce").rglob("*.py"):
        source = part(module_name(path))
        for name in imported_names(path):
            target = part(name)
            if target and target != source:
                edges[source][target].append(f"{module_name(path)} imports {name}")
    return edges


def find_cycle(edges: dict[str, dict[str, list[str]]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in edges.get(node, {}):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in list(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_between_the_parts_of_reproduce_counting_lazy_imports():
    edges = graph()
    cycle = find_cycle(edges)
    if cycle:
        why = [line for a, b in itertools.pairwise(cycle) for line in edges[a][b][:2]]
        pytest.fail(f"import cycle {' -> '.join(cycle)}: " + "; ".join(why))


@pytest.mark.parametrize(
    "part_name, forbidden",
    [
        ("runs", {"engine", "methods", "tasks", "tables", "cli", "experiments", "metrics", "yolo", "benchmarks"}),
        ("methods", {"engine", "tables", "cli", "experiments", "yolo", "benchmarks"}),
        ("tasks", {"engine", "methods", "tables", "cli", "experiments", "yolo"}),
        ("engine", {"tables", "cli", "experiments", "yolo", "benchmarks"}),
        ("tables", {"cli", "experiments"}),
    ],
)
def test_the_layers_point_one_way(part_name, forbidden):
    edges = graph()
    bad = {target: lines for target, lines in edges.get(part_name, {}).items() if target in forbidden}
    assert not bad, f"reproduce.{part_name} imports upwards: {bad}"


@pytest.mark.parametrize("package", ["models", "datasets", "mwam_harness", "mwam", "sde"])
def test_lower_packages_never_import_the_harness(package):
    offending = [
        f"{module_name(path)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in imported_names(path)
        if name.split(".")[0] == "reproduce"
    ]
    assert not offending, offending


def code_words(path: Path) -> set[str]:
    """The names and string literals of ``path``'s code, and their ``_``-separated words, lower-cased (comments and
    docstrings -- strings that make a whole statement -- left out)."""
    out, previous = set(), None
    for token in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if token.type == tokenize.NAME:
            out.add(token.string.lower())
        elif token.type == tokenize.STRING and previous not in (tokenize.INDENT, tokenize.NEWLINE, tokenize.NL, None):
            out.add(token.string.strip("\"'").lower())
        if token.type != tokenize.COMMENT:
            previous = token.type
    out.discard("mwam_harness")  # the harness's package name, not the MWAM plug-in
    return out | {word for text in out for word in text.replace(".", "_").split("_")}


def test_the_trainer_names_no_plugin():
    from reproduce.methods import list_plugins

    words = code_words(ROOT / "reproduce" / "engine" / "trainer.py")
    named = sorted(name for name in list_plugins() if name in words)
    assert not named, f"reproduce/engine/trainer.py names the plug-ins {named}"
