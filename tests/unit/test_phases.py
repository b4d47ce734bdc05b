"""One list of phases: the analysis reads exactly the phases the payload measures and the schema allows."""

from __future__ import annotations

import importlib.util

from harness import analysis
from harness.paths import payload_dir
from harness.results.resultdocs import PAYLOAD_SCHEMA_VERSION, schema


def _payload_resultio():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("tfmh_resultio", payload_dir() / "resultio.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_phases_agree_with_the_payload_and_its_schema() -> None:
    documented = schema(f"payload-result.v{PAYLOAD_SCHEMA_VERSION}")["properties"]["phases_s"]["properties"]
    measured = _payload_resultio().new_result()["phases_s"]
    assert set(analysis.PHASES) == set(documented) == set(measured)
    assert len(analysis.PHASES) == len(set(analysis.PHASES))
