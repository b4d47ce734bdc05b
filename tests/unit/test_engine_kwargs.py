"""Pure checks of the docker SDK kwargs the engine builds (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import docker.errors
import docker.types
import pytest
import requests.exceptions

from harness.errors import EngineError
from harness.images.engine import DockerEngine, _is_timeout, container_kwargs, device_requests, engine_errors
from harness.images.enginelogs import LOG_CAP_BYTES, cap_logs, consume_build_chunk
from harness.images.enginespec import ContainerRequest, Mount, build_kwargs, split_ref


def _req(**kw: object) -> ContainerRequest:
    base: dict[str, object] = {"image": "tfmh/x:1", "command": ["python3", "-V"]}
    return ContainerRequest(**{**base, **kw})  # type: ignore[arg-type]


def test_security_defaults_are_locked_down():
    kw = container_kwargs(_req())
    assert kw["network_mode"] == "none"
    assert kw["cap_drop"] == ["ALL"]
    assert kw["security_opt"] == ["no-new-privileges"]
    assert kw["privileged"] is False
    assert kw["read_only"] is True
    assert "/tmp" in kw["tmpfs"] and "mode=1777" in kw["tmpfs"]["/tmp"]
    assert kw["user"] == "1000:1000"
    assert kw["environment"]["HOME"] == "/tmp"
    assert kw["labels"]["tfmh"] == "1"
    assert "device_requests" not in kw
    assert "mem_limit" not in kw and "nano_cpus" not in kw
    assert "cpuset_cpus" not in kw


def test_user_env_cannot_drop_harness_label():
    kw = container_kwargs(_req(labels={"tfmh": "0", "tfmh.run": "r1"}, env={"A": "b"}))
    assert kw["labels"] == {"tfmh": "1", "tfmh.run": "r1"}
    assert kw["environment"]["A"] == "b"


def test_gpu_device_requests():
    kw = container_kwargs(_req(gpu=True))
    (dr,) = kw["device_requests"]
    assert isinstance(dr, docker.types.DeviceRequest)
    assert dr["Count"] == -1
    assert dr["Capabilities"] == [["gpu"]]
    assert device_requests(False) == []


def test_limits_memswap_equals_mem_and_nano_cpus():
    kw = container_kwargs(_req(cpus=1.5, mem_limit="512m"))
    assert kw["nano_cpus"] == 1_500_000_000
    assert kw["mem_limit"] == "512m"
    assert kw["memswap_limit"] == "512m"


def test_mounts_are_binds_with_read_only_flag():
    kw = container_kwargs(
        _req(
            mounts=[Mount("/host/payload", "/opt/tfmh/payload"), Mount("/host/out", "/out", read_only=False)]
        )
    )
    ro, rw = kw["mounts"]
    assert (ro["Type"], ro["Source"], ro["Target"], ro["ReadOnly"]) == (
        "bind",
        "/host/payload",
        "/opt/tfmh/payload",
        True,
    )
    assert rw["ReadOnly"] is False


def test_build_kwargs_offline_and_cleanup(tmp_path: Path):
    kw = build_kwargs(tmp_path, "bootstrap.Dockerfile", "tfmh/a:1", {"X": "1"}, {"tfmh.image": "a"})
    assert kw["network_mode"] == "none"
    assert kw["pull"] is False and kw["rm"] is True and kw["forcerm"] is True
    assert kw["labels"] == {"tfmh.image": "a"}
    assert kw["buildargs"] == {"X": "1"} and kw["decode"] is True
    # no labels → no extra LABEL steps appended by the classic builder
    assert "labels" not in build_kwargs(tmp_path, "f", "t", {}, {})


def test_cap_logs_keeps_tail():
    text = "a" * LOG_CAP_BYTES + "THE END"
    capped = cap_logs(text)
    assert capped.endswith("THE END")
    assert "truncated" in capped
    assert cap_logs("short") == "short"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("tensorflow/tensorflow:1.15.5-gpu-py3", ("tensorflow/tensorflow", "1.15.5-gpu-py3")),
        ("localhost:5000/tf", ("localhost:5000/tf", "latest")),
        ("nvcr.io/nvidia/tensorflow:23.03-tf1-py3", ("nvcr.io/nvidia/tensorflow", "23.03-tf1-py3")),
        ("busybox", ("busybox", "latest")),
    ],
)
def test_split_ref(ref: str, expected: tuple[str, str]):
    assert split_ref(ref) == expected


def test_build_chunks_emit_lines_and_errors():
    lines: list[str] = []
    assert consume_build_chunk({"stream": "Step 1/3 : FROM x\n"}, lines.append) is None
    assert consume_build_chunk({"stream": "\n"}, lines.append) is None  # blank lines don't eat the tail
    assert consume_build_chunk({"error": "boom\n", "errorDetail": {}}, lines.append) == "boom"
    assert lines == ["Step 1/3 : FROM x", "ERROR: boom"]


def test_engine_errors_maps_connection_errors():
    with pytest.raises(EngineError, match="lost the connection"), engine_errors("doing x"):
        raise requests.exceptions.ConnectionError("refused")


def test_timeout_detection():
    assert _is_timeout(requests.exceptions.ReadTimeout("x"))
    assert not _is_timeout(requests.exceptions.ConnectionError("connection refused"))


def test_cpuset_pins_the_container():
    assert container_kwargs(_req(cpuset="0-1,3"))["cpuset_cpus"] == "0-1,3"


class FakeContainer:
    id = "c0ffee" * 10 + "abcd"
    short_id = "c0ffee"

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.attrs = {"State": {"OOMKilled": False}}

    def start(self) -> None:
        self.events.append("start")

    def wait(self, timeout: float) -> dict[str, int]:
        self.events.append("wait")
        return {"StatusCode": 0}

    def reload(self) -> None:
        pass

    def logs(self, **kw: object) -> bytes:
        return b"hello\n"

    def remove(self, **kw: object) -> None:
        self.events.append("remove")


class FakeClient:
    def __init__(self, events: list[str], stats: object = None) -> None:
        self.events = events
        self.containers = self
        self.api = self
        self._stats = stats

    def create(self, **kw: object) -> FakeContainer:
        self.events.append("create")
        return FakeContainer(self.events)

    def stats(self, container_id: str, stream: bool, one_shot: bool) -> object:
        assert (stream, one_shot) == (False, True)
        if isinstance(self._stats, Exception):
            raise self._stats
        return self._stats


class Monitor:
    def __init__(self, events: list[str], fail: bool = False) -> None:
        self.events = events
        self.fail = fail

    def started(self, container_id: str) -> None:
        self.events.append(f"started:{container_id[:6]}")
        if self.fail:
            raise RuntimeError("monitor bug")

    def finished(self, container_id: str) -> None:
        self.events.append(f"finished:{container_id[:6]}")


def test_monitor_sees_start_then_end_before_removal():
    events: list[str] = []
    engine = DockerEngine(FakeClient(events))  # type: ignore[arg-type]
    out = engine.run_container(_req(), monitor=Monitor(events))
    assert events == ["create", "start", "started:c0ffee", "wait", "finished:c0ffee", "remove"]
    assert out.exit_code == 0 and out.logs == "hello\n"


def test_a_failing_monitor_does_not_fail_the_container():
    events: list[str] = []
    engine = DockerEngine(FakeClient(events))  # type: ignore[arg-type]
    out = engine.run_container(_req(), monitor=Monitor(events, fail=True))
    assert out.exit_code == 0 and events[-1] == "remove"


def test_container_stats_normalises_the_stats_api():
    raw = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 2_500_000_000},
            "throttling_data": {"periods": 10, "throttled_periods": 4, "throttled_time": 300_000_000},
        },
        "memory_stats": {"usage": 1000, "max_usage": 2000},
    }
    engine = DockerEngine(FakeClient([], raw))  # type: ignore[arg-type]
    assert engine.container_stats("x") == {
        "cpu_ns": 2_500_000_000,
        "throttled_periods": 4,
        "throttled_ns": 300_000_000,
        "mem_usage_bytes": 1000,
        "mem_peak_bytes": 2000,
    }
    assert DockerEngine(FakeClient([], {})).container_stats("x") == dict.fromkeys(  # type: ignore[arg-type]
        ("cpu_ns", "throttled_periods", "throttled_ns", "mem_usage_bytes", "mem_peak_bytes")
    )
    boom = DockerEngine(FakeClient([], docker.errors.NotFound("gone")))  # type: ignore[arg-type]
    assert boom.container_stats("x") is None
