"""Which cells this host can run, decided in one place for `harness plan` and `harness run`.

The availability step asks the backend, without making anything (no pull, no build), whether each runnable
cell's image and device can be had here; both commands call ``check_cells``, so they give a cell the same
answer and reason (with the engine's raw error as the detail). `run` then makes the images
(``make_cells``), which can still fail a cell: a build that breaks, a pull that breaks after the registry
answered.
"""

from __future__ import annotations

from harness.execution.execute import Availability, Backend
from harness.matrix.plan import Cell


def mark_availability(
    cells: list[Cell], images: dict[str, Availability], devices: dict[str, Availability]
) -> list[Cell]:
    """Cells marked unavailable (or failed: an image that did not build) by the image and device answers;
    an image without an answer was not prepared."""
    out: list[Cell] = []
    for cell in cells:
        img = images.get(cell.image.name, Availability(False, "image was not prepared"))
        dev = devices.get(cell.device, Availability(True))
        if not cell.available:
            out.append(cell)
        elif not img.available:
            out.append(
                cell.unavailable(
                    img.reason or "image unavailable", "failed" if img.failed else "unavailable", img.detail
                )
            )
        elif not dev.available:
            out.append(cell.unavailable(dev.reason or f"no {cell.device} here", detail=dev.detail))
        else:
            out.append(cell)
    return out


def check_cells(backend: Backend, cells: list[Cell]) -> list[Cell]:
    """The availability step: image (no pull, no build) and device, for the cells still runnable."""
    runnable = [c for c in cells if c.available]
    if not runnable:
        return cells
    images = backend.check(runnable)
    devices = {d: backend.device_available(d) for d in sorted({c.device for c in runnable})}
    return mark_availability(cells, images, devices)


def make_cells(backend: Backend, cells: list[Cell]) -> list[Cell]:
    """Make the images of the runnable cells (after ``check_cells``); a failed image fails its cells."""
    runnable = [c for c in cells if c.available]
    if not runnable:
        return cells
    return mark_availability(cells, backend.prepare(runnable), {})


def prepare_cells(backend: Backend, cells: list[Cell]) -> list[Cell]:
    """``check_cells`` then ``make_cells``: everything a runner needs before the first execution."""
    return make_cells(backend, check_cells(backend, cells))


def engine_unreachable(cells: list[Cell], why: str) -> list[Cell]:
    """Without an engine to ask, no runnable cell can be vouched for."""
    return [c.unavailable(f"cannot ask the Docker engine: {why}") if c.available else c for c in cells]
