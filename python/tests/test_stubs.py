"""The installed package carries type information: py.typed and the extension module's stubs
(_cuebm.pyi, written by nanobind's stubgen at install time; a failed stubgen fails the install,
python/CMakeLists.txt), and the stubs cover every public name of the extension module."""

import ast
import pathlib

import cuebm
from cuebm import _cuebm


def test_extension_stubs_cover_the_module():
    package = pathlib.Path(cuebm.__file__).parent
    assert (package / "py.typed").is_file()
    stub = package / "_cuebm.pyi"
    assert stub.is_file(), f"{stub} is missing: the stub generation did not run"
    tree = ast.parse(stub.read_text())
    names = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name)}
    names |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    names |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom)
              for a in n.names}
    public = {n for n in dir(_cuebm) if not n.startswith("_")}
    assert public - names == set()
    assert "ScoreLoss" in names and "testing" in names
