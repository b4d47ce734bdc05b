"""`harness images` output: the table of harness-built images and the lines of a prune."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.execution.imagestore import PruneResult
from harness.images.inventory import HarnessImage
from harness.report.console import fmt_bytes
from harness.timestamps import utc_iso


def images_table(images: list[HarnessImage]) -> Table:
    table = Table(title=f"{len(images)} image(s) built by the harness", title_justify="left")
    for name in ("image", "tag", "TF", "size", "created", "last used", "wheels as of"):
        table.add_column(name, no_wrap=name != "wheels as of", overflow="fold")
    for image in images:
        table.add_row(
            Text(image.name),
            Text(image.tag),
            Text(image.tf or "-"),
            fmt_bytes(image.size),
            utc_iso(image.created) if image.created else "-",
            Text(image.last_used or "never"),
            Text(image.wheels_as_of[:10] or "-"),
        )
    return table


IMAGES_KIND = "tfmh.images"
IMAGES_VERSION = 1


def images_doc(images: list[HarnessImage]) -> dict[str, Any]:
    """`harness images --format json`: one entry per tag (sizes in bytes, times ISO 8601 UTC or null)."""
    return {
        "kind": IMAGES_KIND,
        "schema_version": IMAGES_VERSION,
        "images": [
            {
                "name": image.name,
                "tag": image.tag,
                "tf": image.tf or None,
                "size_bytes": image.size,
                "created": utc_iso(image.created) if image.created else None,
                "last_used": image.last_used,
                "image_id": image.image_id,
                "wheels_as_of": image.wheels_as_of or None,
            }
            for image in images
        ],
    }


def print_images(console: Console, images: list[HarnessImage], as_json: bool = False) -> int:
    """The table (or the JSON document); returns the exit code (0)."""
    if as_json:
        console.file.write(json.dumps(images_doc(images), indent=1) + "\n")
    else:
        console.print(images_table(images))
    return 0


def print_prune(console: Console, result: PruneResult, dry_run: bool) -> int:
    """The prune's lines; returns its exit code."""
    verb = "would remove" if dry_run else "removed"
    shown = result.candidates if dry_run else result.removed
    for item in shown:
        console.print(Text(f"{verb} {item.image.tag} ({fmt_bytes(item.image.size)}): {item.why}"))
    for item, why in result.failed:
        console.print(Text(f"kept {item.image.tag}: {why}", "yellow"))
    for name in result.kept_unknown:
        console.print(Text(f"kept every tag of {name}: its current tag is not known here (not built yet)"))
    total = fmt_bytes(sum(item.image.size for item in shown))
    console.print(Text(f"{verb} {len(shown)} image(s), {total} (sizes include layers shared with others)"))
    return result.exit_code
