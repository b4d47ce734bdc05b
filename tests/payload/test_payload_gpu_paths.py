"""The payload's GPU memory code paths, per TF version, against fake `tf` modules (no GPU here; they run
for real in the nightly GPU workflow). Each path must report the API it used, or 'not available' — never a
made-up number."""

import sys
from types import SimpleNamespace

import pytest
from conftest import PAYLOAD_DIR


@pytest.fixture
def tfsetup():
    sys.path.insert(0, str(PAYLOAD_DIR))
    try:
        import tfsetup

        yield tfsetup
    finally:
        sys.path.remove(str(PAYLOAD_DIR))


def fake_tf2(version, memory_info=None, raises=None):
    def get_memory_info(device):
        assert device == "GPU:0"
        if raises:
            raise raises
        return memory_info

    experimental = (
        SimpleNamespace(get_memory_info=get_memory_info) if memory_info or raises else SimpleNamespace()
    )
    return SimpleNamespace(__version__=version, config=SimpleNamespace(experimental=experimental))


GPU = {"device": "gpu"}


def test_tf2_reports_allocator_peak(tfsetup):
    peak, api, note = tfsetup.gpu_peak_memory(fake_tf2("2.17.1", {"current": 10, "peak": 123456789}), GPU)
    assert peak == 123456789 and api == "tf.config.experimental.get_memory_info"
    assert "peak" in note


def test_tf2_before_2_5_has_no_api(tfsetup):
    peak, api, note = tfsetup.gpu_peak_memory(fake_tf2("2.4.1"), GPU)
    assert peak is None and api is None and note.startswith("not available: ") and "2.5" in note


def test_tf2_get_memory_info_error_is_not_a_number(tfsetup):
    peak, api, note = tfsetup.gpu_peak_memory(fake_tf2("2.15.0", raises=ValueError("No GPU:0")), GPU)
    assert peak is None and api is None and "No GPU:0" in note


def test_cpu_cell_reports_nothing(tfsetup):
    peak, api, note = tfsetup.gpu_peak_memory(fake_tf2("2.15.0", {"peak": 1}), {"device": "cpu"})
    assert (peak, api) == (None, None) and note.startswith("not available: cpu cell")


class FakeGraph:
    def as_default(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeSession:
    def __init__(self, value):
        self.graph = FakeGraph()
        self.value = value
        self.ran = []

    def run(self, op):
        self.ran.append(op)
        return self.value


def test_tf1_runs_max_bytes_in_use_on_gpu0(tfsetup):
    devices = []

    class Device(FakeGraph):
        def __init__(self, name):
            devices.append(name)

    tf1 = SimpleNamespace(
        __version__="1.15.5",
        device=Device,
        contrib=SimpleNamespace(memory_stats=SimpleNamespace(MaxBytesInUse=lambda: "max-bytes-op")),
    )
    session = FakeSession(987654321)
    peak, api, _ = tfsetup.gpu_peak_memory(tf1, GPU, session=session)
    assert peak == 987654321 and api == "tf.contrib.memory_stats.MaxBytesInUse"
    assert session.ran == ["max-bytes-op"] and devices == ["/device:GPU:0"]


def test_tf1_without_session_is_not_available(tfsetup):
    tf1 = SimpleNamespace(__version__="1.15.5")
    peak, api, note = tfsetup.gpu_peak_memory(tf1, GPU, session=None)
    assert (peak, api) == (None, None) and note.startswith("not available: ")
