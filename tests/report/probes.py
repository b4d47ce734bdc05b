"""Calibration-probe records for tests: one ok probe per matmul rate (GFLOP/s), a steady loop rate."""

from __future__ import annotations

from typing import Any


def probe_records(rates: list[float]) -> list[dict[str, Any]]:
    return [
        {
            "kind": "tfmh.probe-record",
            "index": i,
            "label": f"p{i}",
            "status": "ok",
            "result": {"matmul_gflops": r, "loop_mops": 20.0},
        }
        for i, r in enumerate(rates)
    ]
