#!/usr/bin/env python3
"""Check that each subsystem ("layer") only includes the layers it may depend on.

Sources live in one folder per layer inside three roots:
    host/<layer>/   kernels/<layer>/   include/cuebm/<layer>/
Files directly in include/cuebm/ (forwarding headers, the umbrella cuebm.hpp)
are the top of the stack and are not checked as includers.

Layer table (a layer may always include itself, plus):
    runtime   -
    models    runtime
    data      runtime
    io        runtime, models, data
    sampling  runtime, models
    training  runtime, models, data, io, sampling

Checked: quoted #include "..." lines (not <...>, not commented out). Also errors:
a source file loose in host/ or kernels/, a folder that is not a known layer,
including a top-level cuebm/<name>.hpp from a layer, and a relative ../ include.

Run:  python3 tools/check_layers.py [ROOT]   (ROOT defaults to the repository)
      python3 tools/check_layers.py --self-test
Exit: 0 clean, 1 violations (or self-test failure), 2 usage error.
"""
import os
import posixpath
import re
import sys
import tempfile

LAYERS = ["runtime", "models", "data", "io", "sampling", "training"]
ALLOWED = {
    "runtime": set(),
    "models": {"runtime"},
    "data": {"runtime"},
    "io": {"runtime", "models", "data"},
    "sampling": {"runtime", "models"},
    "training": {"runtime", "models", "data", "io", "sampling"},
}
ROOTS = ["host", "kernels", "include/cuebm"]
SOURCE_SUFFIXES = (".hpp", ".cpp", ".cuh", ".cu", ".h")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
TOKEN_RE = re.compile(r'"(?:\\.|[^"\\\n])*"|//[^\n]*|/\*.*?\*/', re.S)


def quoted_includes(path):
    """Yield (line_number, include_text) for each #include "..." outside comments."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    # Blank out // and /* */ comments (keeping newlines, so line numbers stay right);
    # string literals are matched too only so that a "/*" inside one is left alone.
    text = TOKEN_RE.sub(lambda m: m.group(0) if m.group(0).startswith('"')
                        else "\n" * m.group(0).count("\n"), text)
    for number, line in enumerate(text.splitlines(), 1):
        match = INCLUDE_RE.match(line)
        if match:
            yield number, match.group(1)


def layer_of_path(rel_path):
    """Layer of a root-relative path like host/io/x.cpp, or None."""
    for root in ROOTS:
        prefix = root + "/"
        if rel_path.startswith(prefix):
            parts = rel_path[len(prefix):].split("/")
            if len(parts) >= 2 and parts[0] in LAYERS:
                return parts[0]
    return None


def check_include(rel_file, layer, number, target):
    """Return the error lines for one include of file rel_file (in layer)."""
    where = "%s:%d:" % (rel_file, number)
    errors = []
    if target.startswith("cuebm/") and "/" not in target[len("cuebm/"):]:
        return [where + " include the layer path, not the top-level forwarding header '%s'" % target]
    if target.startswith("cuebm/"):
        included = layer_of_path("include/" + target)
    elif target.startswith(("host/", "kernels/")):
        included = layer_of_path(target)
    elif target.startswith(("../", "./")) or "/" not in target:
        if target.startswith("../"):
            errors.append(where + " relative include '%s' climbs out of its folder; "
                                  "use a root-relative path" % target)
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel_file), target))
        included = layer_of_path(resolved)
    else:
        included = None  # third-party, e.g. "nlohmann/json.hpp"
    if included and included != layer and included not in ALLOWED[layer]:
        errors.append(where + " layer '%s' may not include '%s' (layer '%s'); allowed: %s"
                      % (layer, target, included, ", ".join(
                          name for name in LAYERS if name == layer or name in ALLOWED[layer])))
    return errors


def check_tree(root):
    """Return (errors, files_checked, includes_checked) for the tree at root."""
    errors, files, includes = [], 0, 0
    for top in ROOTS:
        top_dir = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(top_dir):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
            for name in sorted(filenames):
                if not name.endswith(SOURCE_SUFFIXES):
                    continue
                rel_file = rel_dir + "/" + name
                layer = layer_of_path(rel_file)
                if layer is None:
                    if rel_dir == "include/cuebm":
                        continue  # top-level public headers: not checked
                    if rel_dir == top:
                        errors.append(rel_file + ": belongs in a layer folder (%s/<layer>/)" % top)
                    else:
                        errors.append(rel_file + ": not in a known layer folder (%s)"
                                      % ", ".join(LAYERS))
                    continue
                files += 1
                for number, target in quoted_includes(os.path.join(dirpath, name)):
                    includes += 1
                    errors.extend(check_include(rel_file, layer, number, target))
    return errors, files, includes


def write_files(root, files):
    for rel_path, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, rel_path)), exist_ok=True)
        with open(os.path.join(root, rel_path), "w", encoding="utf-8") as f:
            f.write(text)


def self_test():
    clean = {
        "include/cuebm/cuebm.hpp": '#include "cuebm/training/training.hpp"\n',
        "include/cuebm/mlp.hpp": '#include "cuebm/models/mlp.hpp"\n',
        "include/cuebm/runtime/error.hpp": "#include <string>\n",
        "include/cuebm/models/mlp.hpp": '#include "cuebm/runtime/error.hpp"\n',
        "host/models/mlp.cpp": ('#include "cuebm/models/mlp.hpp"\n#include "mlp_block.hpp"\n'
                                '// #include "cuebm/sampling/langevin.hpp"\n'
                                '/* #include "cuebm/training/cd.hpp"\n'
                                '   #include "host/io/npy.hpp" */\n#include <vector>\n'),
        "host/io/npy.cpp": ('#include "cuebm/data/datasets.hpp"  // see io/*.hpp\n'
                            '#include "nlohmann/json.hpp" /* x */\n'),
        "kernels/sampling/langevin.cu": '#include "kernels/models/mlp.cuh"\n#include "hd.cuh"\n',
        "host/training/cd.cpp": '#include "cuebm/io/npy.hpp"\n#include "host/sampling/x.hpp"\n',
        "host/README.md": "notes\n",
    }
    planted = {
        "host/models/bad.cpp": ('#include "cuebm/sampling/langevin.hpp"\n',
                                ["host/models/bad.cpp:1: layer 'models' may not include "
                                 "'cuebm/sampling/langevin.hpp' (layer 'sampling'); "
                                 "allowed: runtime, models"]),
        "host/io/bad.cpp": ('#include <map>\n#include "host/training/cd.hpp"\n',
                            ["host/io/bad.cpp:2: layer 'io' may not include 'host/training/cd.hpp'"]),
        "kernels/data/bad.cuh": ('#include "cuebm/training/training.hpp"\n',
                                 ["kernels/data/bad.cuh:1: layer 'data' may not include"]),
        "host/loose.cpp": ("int x;\n", ["host/loose.cpp: belongs in a layer folder"]),
        "host/sampling/fwd.cpp": ('#include "cuebm/mlp.hpp"\n',
                                  ["host/sampling/fwd.cpp:1: include the layer path, not the "
                                   "top-level forwarding header 'cuebm/mlp.hpp'"]),
        "host/runtime/rel.cpp": ('\n#include "../models/mlp.hpp"\n',
                                 ["host/runtime/rel.cpp:2: relative include '../models/mlp.hpp' climbs",
                                  "host/runtime/rel.cpp:2: layer 'runtime' may not include "
                                  "'../models/mlp.hpp' (layer 'models')"]),
    }
    failures = []
    with tempfile.TemporaryDirectory() as root:
        write_files(root, clean)
        errors, files, includes = check_tree(root)
        if errors or files != 6 or includes != 9:
            failures.append("clean tree: %r files=%d includes=%d" % (errors, files, includes))
        write_files(root, {rel_path: text for rel_path, (text, _) in planted.items()})
        errors, _, _ = check_tree(root)
        expected = [line for _, lines in planted.values() for line in lines]
        for want in expected:
            if not any(error.startswith(want) for error in errors):
                failures.append("not reported: " + want)
        if len(errors) != len(expected):
            failures.append("expected %d errors, got %d: %r" % (len(expected), len(errors), errors))
    for failure in failures:
        print("self-test FAILED: " + failure)
    if not failures:
        print("check_layers: self-test passed")
    return 1 if failures else 0


def main(argv):
    if argv[1:2] == ["--self-test"]:
        return self_test()
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        print("usage: check_layers.py [ROOT] | --self-test", file=sys.stderr)
        return 2
    default_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = argv[1] if len(argv) == 2 else default_root
    missing = [top for top in ROOTS if not os.path.isdir(os.path.join(root, top))]
    if missing:
        print("check_layers: %s is missing %s" % (root, ", ".join(missing)), file=sys.stderr)
        return 2
    errors, files, includes = check_tree(root)
    for error in errors:
        print(error)
    outcome = "%d violations" % len(errors) if errors else "no violations"
    print("check_layers: %d files, %d includes, %s" % (files, includes, outcome))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
