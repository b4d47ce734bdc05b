"""What every execution of the payload sees, declared once: the mount points, the user, the environment,
the labels and the log limit. The docker backend and the engine's container defaults both read these; the
local backend uses the environment and the log limit (it has no mounts: the spec names host paths).
No imports: the engine adapter reads it too."""

from __future__ import annotations

#: read-only: the payload's code
PAYLOAD_MOUNT = "/opt/tfmh/payload"
#: read-only: the spec
IN_MOUNT = "/in"
#: the only writable mount: the result file
OUT_MOUNT = "/out"
#: read-only: the data folder (mnist.npz)
DATA_MOUNT = "/data"
#: the non-root user every container runs as (the out folder is made writable for it)
CONTAINER_USER = "1000:1000"
#: what the engine sets in every container (the root fs is read-only; /tmp is a tmpfs)
CONTAINER_BASE_ENV = {"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}
#: what the payload runs with, in a container or a local interpreter
PAYLOAD_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "1"}
#: every container and image the harness creates carries this label
HARNESS_LABEL = "tfmh"
HARNESS_LABEL_VALUE = "1"
#: what an image with ``keras: legacy`` runs with (its image environment; the local runner sets it)
LEGACY_KERAS_ENV = {"TF_USE_LEGACY_KERAS": "1"}
#: the label naming the run a container belongs to
RUN_LABEL = "tfmh.run"
#: keep this much of an execution's stdout+stderr (the tail)
LOG_CAP_BYTES = 64 * 1024


def container_labels(run_id: str | None = None) -> dict[str, str]:
    """The labels of a payload container (with ``run_id``) or the filter for all of them (without)."""
    labels = {HARNESS_LABEL: HARNESS_LABEL_VALUE}
    return {**labels, RUN_LABEL: run_id} if run_id is not None else labels
