"""Which backend executes the payload: a fresh container per execution (harness.execution.docker_backend) or
an
existing interpreter (harness.execution.local_backend). The one place that connects to the Docker engine for
the
commands, and the availability answer of `harness plan` (the docker backend's ``check``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.execution.availability import check_cells, engine_unreachable
from harness.execution.execute import Backend
from harness.execution.runner import RunObserver
from harness.execution.settings import RunOptions
from harness.images.imageplan import BuildEvents
from harness.matrix.plan import Cell

if TYPE_CHECKING:
    from harness.images.engine import DockerEngine


def connect_engine() -> DockerEngine:
    """The Docker engine (EngineError, exit 2, when it cannot be reached)."""
    from harness.images.engine import DockerEngine

    return DockerEngine.connect()


def open_backend(options: RunOptions, observer: RunObserver) -> Backend:
    """The backend ``options.runner`` names; the observer hears build lines (and, local, which interpreter
    has what: always worth a line)."""
    if options.runner == "local":
        from harness.execution.local_backend import LocalBackend

        return LocalBackend.from_args(list(options.python), on_log=observer.note)
    from harness.execution.docker_backend import DockerBackend

    return DockerBackend(
        engine=connect_engine(),
        cache_dir=options.cache(),
        on_log=observer.log,
        events=observer if isinstance(observer, BuildEvents) else None,
    )


def docker_availability(cells: list[Cell], cache_dir: Path) -> list[Cell]:
    """`harness plan`: the availability step `harness run` takes, with the docker backend (asks, never pulls
    or builds). Without an engine every runnable cell is unavailable, saying why."""
    from harness.execution.docker_backend import DockerBackend

    try:
        engine = connect_engine()
    except HarnessError as exc:
        return engine_unreachable(cells, str(exc))
    return check_cells(DockerBackend(engine=engine, cache_dir=cache_dir), cells)
