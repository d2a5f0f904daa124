"""Type information for editors. The installed package carries py.typed and the extension
module's stub package cuebm/_cuebm/ (__init__.pyi, testing.pyi), written by nanobind's stubgen at
install time (python/CMakeLists.txt): the stubs must equal a fresh stubgen run on the loaded
module (a stale stub fails), cover every public name and spell every type in Python. The
Python-level modules carry their annotations inline: every public function and method has a
docstring and annotated parameters and result."""

import ast
import importlib
import inspect
import pathlib
import subprocess
import sys

import pytest

import cuebm
from cuebm import _cuebm

PACKAGE = pathlib.Path(cuebm.__file__).parent
ERRORS_STUB = pathlib.Path(__file__).resolve().parents[1] / "stubs" / "_cuebm_errors.pyi"
PYTHON_MODULES = ["cuebm", "cuebm.data", "cuebm.energies", "cuebm.io", "cuebm.losses",
                  "cuebm.metrics", "cuebm.samplers", "cuebm.torch", "cuebm.training"]


def generate_stubs(out):
    """The stubs as the install writes them (python/CMakeLists.txt), from the loaded module."""
    pytest.importorskip("nanobind.stubgen", reason="nanobind is not installed here")
    module_dir = pathlib.Path(_cuebm.__file__).resolve().parent
    subprocess.run([sys.executable, "-m", "nanobind.stubgen", "-q", "-r", "-m", "_cuebm",
                    "-i", str(module_dir), "-O", str(out)], check=True)
    texts = {}
    for name in ("__init__", "testing"):
        text = (out / "_cuebm" / f"{name}.pyi").read_text()
        text = text.replace("from _cuebm import ", "from cuebm._cuebm import ")
        text = text.replace("\nimport _cuebm\n", "\nfrom cuebm import _cuebm\n")
        if name == "__init__":
            text += ERRORS_STUB.read_text()
        texts[name] = text
    return texts


def installed_stubs():
    stub_dir = PACKAGE / "_cuebm"
    if not (stub_dir / "__init__.pyi").is_file():
        pytest.skip(f"{stub_dir} has no stubs: the package is not installed (python/ on the "
                    "path next to a built module)")
    return {n: (stub_dir / f"{n}.pyi").read_text() for n in ("__init__", "testing")}


def stub_names(text):
    tree = ast.parse(text)
    names = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name)}
    names |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    names |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom)
              for a in n.names}
    return names


def test_installed_stubs_equal_a_fresh_stubgen_run(tmp_path):
    assert (PACKAGE / "py.typed").is_file()
    installed = installed_stubs()
    assert installed == generate_stubs(tmp_path), "stale stubs: reinstall the package"


def test_stubs_cover_the_module_in_python_types(tmp_path):
    stubs = generate_stubs(tmp_path)
    for text, module in ((stubs["__init__"], _cuebm), (stubs["testing"], _cuebm.testing)):
        public = {n for n in dir(module) if not n.startswith("_")}
        assert public - stub_names(text) == set(), module.__name__
    assert {"ScoreLoss", "testing", "InvalidArgument"} <= stub_names(stubs["__init__"])
    # A C++ type without a caster shows up as its C++ name (and fails at run time).
    for name, text in stubs.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AnnAssign, ast.arg)):
                note = node.returns if isinstance(node, ast.FunctionDef) else node.annotation
                if note is not None:
                    assert "::" not in ast.unparse(note), f"{name}.pyi: {ast.unparse(note)}"


def public_callables():
    """(qualified name, object) of every public function, class and method of the Python-level
    modules (defined there, not imported)."""
    for module_name in PYTHON_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
                continue
            if inspect.isfunction(obj):
                yield f"{module_name}.{name}", obj
            elif inspect.isclass(obj):
                yield f"{module_name}.{name}", obj
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if isinstance(member, property):
                        member = member.fget
                    if inspect.isfunction(member):
                        yield f"{module_name}.{name}.{attr}", member


def test_python_modules_are_documented_and_annotated():
    missing = []
    for qualname, obj in public_callables():
        if not qualname.endswith("__init__") and not inspect.getdoc(obj):
            missing.append(f"{qualname}: no docstring")
        if inspect.isclass(obj):
            continue
        sig = inspect.signature(obj)
        for p in sig.parameters.values():
            if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty:
                missing.append(f"{qualname}: parameter {p.name} not annotated")
        if sig.return_annotation is inspect.Signature.empty:
            missing.append(f"{qualname}: result not annotated")
    assert missing == [], "\n".join(missing)
