"""The package's shape: no import cycles (function-level imports included)."""

import ast
from pathlib import Path

import bids_encoding

PACKAGE = Path(bids_encoding.__file__).parent


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph():
    """``{module: {modules of the package it imports}}``, from every import statement, at any depth."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = {module for module in imported if module in paths and module != name
                       and not name.startswith(module + ".")}  # a module's own parent packages load first anyway
    return graph


def find_cycle(graph):
    state = {}

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 30
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def reachable(graph, start):
    seen, stack = set(), [start]
    while stack:
        for target in graph[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def test_group_level_does_not_reach_the_participant_orchestrator():
    graph = import_graph()
    for module in (name for name in graph if name.startswith("bids_encoding.group")):
        reached = reachable(graph, module)
        assert not any(name == "bids_encoding.participant" or name.startswith("bids_encoding.participant.")
                       for name in reached), module


def test_the_wheel_carries_every_file_the_package_reads(tmp_path):
    """A plain (non-editable) install has the report templates (a container or PyPI install lacked them)."""
    import shutil
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"  # a clean tree: an egg-info left by an editable install would list the files
    shutil.copytree(root / "bids_encoding", source / "bids_encoding", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(tmp_path), str(source)], capture_output=True, text=True)
    if built.returncode != 0 and "No module named" in built.stderr:
        import pytest

        pytest.skip(f"cannot build a wheel here: {built.stderr.strip().splitlines()[-1]}")
    assert built.returncode == 0, built.stderr
    names = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    data = {str(path.relative_to(root)) for path in (root / "bids_encoding").rglob("*")
            if path.is_file() and path.suffix not in (".py", ".pyc")}
    assert data and data <= names, sorted(data - names)


def package_graph(graph):
    """The import graph between the package's subpackages and top-level modules (``bids_encoding.group``, ...)."""
    def package(module):
        return ".".join(module.split(".")[:2])

    packages = {}
    for module, targets in graph.items():
        packages.setdefault(package(module), set()).update(
            package(target) for target in targets if package(target) != package(module))
    return packages


def test_no_import_cycle_between_packages():
    """A module-level cycle test cannot see ``group -> neurons -> group`` through different modules."""
    cycle = find_cycle(package_graph(import_graph()))
    assert cycle is None, " -> ".join(cycle)


# globs of the input dataset (its sub-* folders) and of installed files, which are no derivative names
INPUT_GLOBS = {
    ("bids_encoding.group.run", "sub-*"),  # the BIDS dataset's participants
    ("bids_encoding.reports.run", "sub-*"),  # the BIDS dataset's participants
    ("bids_encoding.cli.demo", "*.gguf"),  # an installed model's file
    ("bids_encoding.reports.pycortex", "f'{kind}_{hemi}.*'"),  # a pycortex subject's surfaces
}
NAME_OWNERS = ("bids_encoding.derivatives", "bids_encoding.inputs")  # write the derivatives; read the inputs
GLOBS = {"glob", "rglob", "iglob", "fnmatch", "fnmatchcase"}


def hand_globs(source, module):
    """``(line, pattern)`` of the calls in ``source`` that glob (``glob``, ``rglob``, ``fnmatch``) or give
    :func:`~bids_encoding.derivatives.names.find` a pattern, less the allowed input globs."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name in GLOBS:
            patterns = node.args[-1:] if name.startswith("fnmatch") else node.args[:1]
        elif name == "find" and not isinstance(node.func, ast.Attribute):
            patterns = node.args[1:2] + [keyword.value for keyword in node.keywords if keyword.arg == "pattern"]
        else:
            continue
        for pattern in patterns:
            text = pattern.value if isinstance(pattern, ast.Constant) else ast.unparse(pattern)
            if (module, text) not in INPUT_GLOBS:
                found.append((node.lineno, text))
    return sorted(found)


def test_derivative_files_are_found_through_names():
    """Outside ``bids_encoding.derivatives`` (and the input readers), no module globs for derivative names: it
    finds them through :mod:`bids_encoding.derivatives.names`, where the names are built."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    found = [f"{paths[module].relative_to(PACKAGE.parent)}:{line}: {pattern}"
             for module in sorted(paths) if not module.startswith(NAME_OWNERS)
             for line, pattern in hand_globs(paths[module].read_text(), module)]
    assert not found, "\n".join(found)


def test_hand_globs_are_caught():
    source = ("from pathlib import Path\nimport fnmatch\n"
              "a = sorted(Path('out').glob('sub-*/func/*_scores.tsv'))\n"
              "b = any(folder.rglob(f'sub-{subject}_*_statmap.nii.gz'))\n"
              "c = fnmatch.fnmatch(name, '*_desc-isc_bold.json')\n"
              "d = find(folder, f'task-{task}_*', suffix='scores')\n"
              "e = find(folder, suffix='scores')\n"
              "f = Path('bids').glob('sub-*')\n")
    assert [line for line, _ in hand_globs(source, "bids_encoding.group.run")] == [3, 4, 5, 6]
    assert [line for line, _ in hand_globs(source, "bids_encoding.cli.demo")] == [3, 4, 5, 6, 8]


MAX_PARAMETERS = 8
MAX_LINES = {"participant": 300, "ridge": 400}


def too_many_parameters(source):
    """``[(function, count)]`` of the functions in ``source`` that take more than ``MAX_PARAMETERS`` (``self`` and
    ``cls`` not counted; ``*args`` and ``**kwargs`` one each)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
            count = len(names) + bool(arguments.vararg) + bool(arguments.kwarg) - (names[:1] in (["self"], ["cls"]))
            if count > MAX_PARAMETERS:
                found.append((node.name, count))
    return found


def test_no_function_takes_more_than_eight_parameters():
    """State that many functions pass around goes in an object (the participant level's Batch and FitRecord, the
    ridge's Compute, the generator's SyntheticStudy)."""
    found = {str(path.relative_to(PACKAGE)): too_many_parameters(path.read_text()) for path in PACKAGE.rglob("*.py")}
    assert not {path: functions for path, functions in found.items() if functions}


def test_the_parameter_count_is_checked():
    assert too_many_parameters("def f(a, b, c, d, e, f, g, h, i): pass") == [("f", 9)]
    assert too_many_parameters("class A:\n    def f(self, a, b, c, d, e, f, g, h): pass") == []
    assert too_many_parameters("def f(a, *args, b, c, d, e, f, g, **kwargs): pass") == [("f", 9)]


def test_participant_and_ridge_modules_stay_small():
    """One concern per module: at most 300 lines in participant/, 400 in ridge/."""
    long = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
            for package, limit in MAX_LINES.items() for path in (PACKAGE / package).glob("*.py")
            if len(path.read_text().splitlines()) > limit}
    assert not long
