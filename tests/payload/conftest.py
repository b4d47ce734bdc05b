"""Shared helpers for the payload tests (payload modules are plain scripts, not a package)."""

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAYLOAD_DIR = REPO / "harness" / "payload"
SCHEMA_PATH = REPO / "harness" / "results" / "schemas" / "payload-result.v2.json"
TF115_API = REPO / "tests" / "data" / "tf1_15_api.txt"

# Modules that must run on TF 1.15 (python 3.6): their tf.* names are checked against TF 1.15's API.
TF1_PATH_FILES = (
    "run.py",
    "probe.py",
    "cellspec.py",
    "resultio.py",
    "timing.py",
    "data.py",
    "models.py",
    "tfsetup.py",
    "provenance.py",
    "keras_fit.py",
    "tf1_graph.py",
    "tiny_fit.py",
    "tiny_graph.py",
    "call_overhead.py",
)
# Modules only imported after a TF >= 2 version check.
TF2_ONLY_FILES = ("tf2_api.py", "tf2_loops.py", "call_tf2.py")


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """Where the payload runs of a session write their specs and results (test_payload_run.run_payload)."""
    return tmp_path_factory.mktemp("payload-runs")


@pytest.fixture(scope="session")
def validator():
    """The payload-result schema's validator."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="session")
def payload_modules():
    """Import the TF-free payload modules on the host interpreter (they live on sys.path[0] at run time)."""
    sys.path.insert(0, str(PAYLOAD_DIR))
    try:
        import cellspec
        import data
        import models
        import probe
        import resultio
        import timing

        yield {
            "cellspec": cellspec,
            "data": data,
            "models": models,
            "probe": probe,
            "resultio": resultio,
            "timing": timing,
        }
    finally:
        sys.path.remove(str(PAYLOAD_DIR))


def tf_pythons():
    """Real TF interpreters: TFMH_TF_PYTHONS (comma-separated) and/or TFMH_TF_PYTHONS_FILE (one per line,
    written by `python -m harness.images.nativeenv --out`, as the `payload` tox environment does)."""
    raw = os.environ.get("TFMH_TF_PYTHONS", "").split(",")
    listing = os.environ.get("TFMH_TF_PYTHONS_FILE")
    if listing and os.path.exists(listing):
        with open(listing) as fh:
            raw += fh.read().splitlines()
    return [p.strip() for p in raw if p.strip()]
