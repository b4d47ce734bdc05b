#!/usr/bin/env python3
"""Regenerate tests/data/tf1_15_api.txt: the public Python API names of TensorFlow 1.15.

The list is read from the real wheel without installing it (zipfile + ast):

* ``tensorflow_core/__init__.py``                        -> ``tf``
* ``tensorflow_core/_api/v1/<pkg>/__init__.py``          -> ``tf.<pkg>`` (includes ``tf.compat.v1``/``v2``)
* ``tensorflow_core/python/keras/api/_v1/keras/<pkg>``   -> ``tf.keras.<pkg>``
* ``tensorflow_core/python/keras/api/_v2/keras/<pkg>``   -> reachable as ``tf.compat.v2.keras.<pkg>``

Every ``from X import Y [as Z]`` in those generated files is a public name ``<module>.Z``; when ``X.Y`` is
itself one of the API packages above, ``<module>.Z`` is an alias and all names under it are copied.

``tf.contrib`` is not under ``_api`` (it is a LazyLoader attribute). It is handled by an explicit
allow-list (CONTRIB_MODULES): for each listed contrib sub-package the names imported by its
``tensorflow_core/contrib/<name>/__init__.py`` are added. Other attributes set dynamically at import
time (``tf.flags``, ``tf.app.flags``, ``tf.estimator``'s contents) are deliberately not listed.

Usage (downloads the wheel into the cache dir when --wheel is not given):

    .venv/bin/python tests/tools/extract_tf115_api.py [--wheel PATH] [--out tests/data/tf1_15_api.txt]
"""

import argparse
import ast
import hashlib
import os
import subprocess
import sys
import zipfile

WHEEL_SPEC = "tensorflow-cpu==1.15.0"
WHEEL_NAME = "tensorflow_cpu-1.15.0-cp37-cp37m-manylinux2010_x86_64.whl"
CACHE_DIR = os.path.expanduser("~/.cache/tf-matrix-harness/tf115")
CONTRIB_MODULES = ("memory_stats",)  # explicit allow-list of tf.contrib sub-packages
UNDERSCORE_OK = (
    "__version__",
    "__git_version__",
    "__compiler_version__",
    "__cxx11_abi_flag__",
    "__monolithic_build__",
)
MAX_DEPTH = 8  # alias expansion cap (tf.compat.v1.compat.v1... recursion)

# (path prefix inside the wheel, dotted module prefix in Python, public name prefix)
ROOTS = (
    ("tensorflow_core/_api/v1/", "tensorflow._api.v1", "tf"),
    ("tensorflow_core/python/keras/api/_v1/keras/", "tensorflow.python.keras.api._v1.keras", "tf.keras"),
    (
        "tensorflow_core/python/keras/api/_v2/keras/",
        "tensorflow.python.keras.api._v2.keras",
        "tf.compat.v2.keras",
    ),
)


def download_wheel():
    path = os.path.join(CACHE_DIR, WHEEL_NAME)
    if not os.path.exists(path):
        os.makedirs(CACHE_DIR, exist_ok=True)
        subprocess.check_call(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                "manylinux2010_x86_64",
                "--python-version",
                "3.7",
                "--implementation",
                "cp",
                WHEEL_SPEC,
                "-d",
                CACHE_DIR,
            ]
        )
    return path


def api_files(names):
    """Yield (wheel path, public prefix, python module name) for every generated API __init__.py."""
    yield "tensorflow_core/__init__.py", "tf", "tensorflow"
    for path in names:
        if not path.endswith("/__init__.py"):
            continue
        for root, pymod, public in ROOTS:
            if path.startswith(root):
                rel = path[len(root) : -len("/__init__.py")]
                parts = [p for p in rel.split("/") if p]
                yield path, ".".join([public, *parts]), ".".join([pymod, *parts])


def public_of_module(dotted, modmap):
    """Public prefix of a python module name (tensorflow._api.v1.x -> tf.x), or None."""
    for alias in (dotted, dotted.replace("tensorflow.", "tensorflow_core.", 1)):
        if alias in modmap:
            return modmap[alias]
    return None


def parse_file(src, prefix, pymod, modmap):
    """Return (names, aliases) defined by one generated __init__.py."""
    tree = ast.parse(src)
    names, aliases, deleted = set(), {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Delete):
            deleted.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
            continue
        source = node.module or ""
        if node.level:
            source = ".".join([*pymod.split(".")[: len(pymod.split(".")) - node.level + 1], source]).rstrip(
                "."
            )
        for alias in node.names:
            public = alias.asname or alias.name
            if public.startswith("_") and public not in UNDERSCORE_OK:
                continue
            target = public_of_module(source + "." + alias.name, modmap)
            if target is not None:
                aliases[prefix + "." + public] = target
            names.add(prefix + "." + public)
    names -= {prefix + "." + d for d in deleted}
    return names, aliases


def contrib_names(zf):
    names = {"tf.contrib"}
    for sub in CONTRIB_MODULES:
        src = zf.read(f"tensorflow_core/contrib/{sub}/__init__.py").decode("utf-8")
        names.add("tf.contrib." + sub)
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__" and "contrib" in node.module:
                names.update(f"tf.contrib.{sub}.{a.asname or a.name}" for a in node.names)
    return names


def expand_aliases(names, aliases):
    changed = True
    while changed:
        changed = False
        for new, target in aliases.items():
            for name in list(names):
                if name.startswith(target + ".") and name.count(".") < MAX_DEPTH:
                    copy = new + name[len(target) :]
                    if copy not in names and copy.count(".") <= MAX_DEPTH:
                        names.add(copy)
                        changed = True
    return names


def extract(wheel):
    with zipfile.ZipFile(wheel) as zf:
        files = list(api_files(zf.namelist()))
        modmap = {pymod: public for _, public, pymod in files}
        names, aliases = set(), {}
        for path, public, pymod in files:
            names.add(public)
            found, found_aliases = parse_file(zf.read(path).decode("utf-8"), public, pymod, modmap)
            names |= found
            aliases.update(found_aliases)
        names |= contrib_names(zf)
    return sorted(expand_aliases(names, aliases))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", help=f"path to {WHEEL_NAME} (downloaded when omitted)")
    parser.add_argument("--out", default=os.path.join(here, "..", "data", "tf1_15_api.txt"))
    args = parser.parse_args()
    wheel = args.wheel or download_wheel()
    names = extract(wheel)
    header = [
        "# Public API names of TensorFlow 1.15 (one dotted name per line; a name is a module when",
        "# other names start with it + '.'). Generated by tests/tools/extract_tf115_api.py from",
        f"# {os.path.basename(wheel)} sha256={sha256(wheel)}",
        "# tf.contrib: allow-list {} only.".format(", ".join(CONTRIB_MODULES)),
    ]
    with open(args.out, "w") as f:
        f.write("\n".join(header + names) + "\n")
    print("wrote %d names to %s" % (len(names), os.path.normpath(args.out)))


if __name__ == "__main__":
    main()
