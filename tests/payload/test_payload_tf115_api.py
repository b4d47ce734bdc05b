"""tf.* attribute chains in the TF 1.15-path payload modules must exist in TF 1.15's public API.

tests/data/tf1_15_api.txt is generated from the tensorflow-cpu 1.15.0 wheel by
tests/tools/extract_tf115_api.py. A chain tf.a.b.c is checked component by component while the prefix is
a module (some other name starts with it + '.'); once it reaches a class/function the rest (methods,
attributes) is not checked. getattr(tf..., "name", default) is deliberately tolerant and not checked.
"""

import ast
import functools

import pytest
from conftest import PAYLOAD_DIR, TF1_PATH_FILES, TF2_ONLY_FILES, TF115_API


@functools.lru_cache(maxsize=1)
def tf115_api():
    names = {
        line.strip()
        for line in TF115_API.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    modules = set()
    for name in names:
        parts = name.split(".")
        modules.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return names, modules


def tf_chains(src):
    """Maximal attribute chains rooted at the name `tf` (e.g. 'tf.compat.v1.Session')."""
    chains, inner = [], set()
    for node in ast.walk(ast.parse(src)):
        if not isinstance(node, ast.Attribute) or id(node) in inner:
            continue
        parts, cur = [], node
        while isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            if isinstance(cur.value, ast.Attribute):
                inner.add(id(cur.value))
            cur = cur.value
        if isinstance(cur, ast.Name) and cur.id == "tf":
            chains.append((node.lineno, ".".join(["tf", *reversed(parts)])))
    return chains


def missing_in_tf115(src):
    names, modules = tf115_api()
    missing = []
    for lineno, chain in tf_chains(src):
        parts = chain.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix not in modules:
                break  # reached a class / function / constant: methods are not checked
            if ".".join(parts[: i + 1]) not in names:
                missing.append((lineno, chain))
                break
    return missing


def test_api_list_is_plausible():
    names, modules = tf115_api()
    assert len(names) > 5000
    for must in (
        "tf.compat.v1.Session",
        "tf.keras.layers.Dense",
        "tf.contrib.memory_stats.MaxBytesInUse",
        "tf.compat.v1.ConfigProto",
        "tf.config.threading.set_intra_op_parallelism_threads",
    ):
        assert must in names
    assert "tf.contrib.memory_stats" in modules


@pytest.mark.parametrize("name", TF1_PATH_FILES)
def test_tf1_path_uses_only_tf115_names(name):
    src = (PAYLOAD_DIR / name).read_text()
    assert missing_in_tf115(src) == []


@pytest.mark.parametrize("name", TF1_PATH_FILES)
def test_tf1_path_imports_tf2_modules_only_lazily(name):
    """TF2-only modules may be imported inside functions (after a version check), never at module level."""
    tf2 = {n[:-3] for n in TF2_ONLY_FILES}
    for node in ast.parse((PAYLOAD_DIR / name).read_text()).body:
        if isinstance(node, ast.Import):
            assert not {a.name for a in node.names} & tf2, f"{name} imports a TF2-only module at top level"


@pytest.mark.parametrize(
    "snippet, bad",
    [
        ("tf.config.experimental.get_memory_info('GPU:0')", "tf.config.experimental.get_memory_info"),
        ("tf.random.set_seed(1)", "tf.random.set_seed"),
        ("tf.sysconfig.get_build_info()", "tf.sysconfig.get_build_info"),
        ("tf.config.list_physical_devices()", "tf.config.list_physical_devices"),
        ("tf.keras.utils.set_random_seed(1)", "tf.keras.utils.set_random_seed"),
        ("tf.data.AUTOTUNE", "tf.data.AUTOTUNE"),
    ],
)
def test_tf2_only_names_are_flagged(snippet, bad):
    assert [chain for _, chain in missing_in_tf115(snippet)] == [bad]


@pytest.mark.parametrize(
    "snippet",
    [
        "tf.compat.v1.Session(config=tf.compat.v1.ConfigProto())",
        "tf.contrib.memory_stats.MaxBytesInUse()",
        "tf.data.Dataset.from_tensor_slices(x).shuffle(10)",
        "tf.function",  # note: tf.function already exists in TF 1.15 (it is not TF2-only)
        "tf.keras.callbacks.Callback",
    ],
)
def test_tf115_names_pass(snippet):
    assert missing_in_tf115(snippet) == []
