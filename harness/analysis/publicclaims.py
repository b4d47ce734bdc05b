"""The public record's claims (`public_record.yaml` beside this module): quantified TF1-vs-TF2 and
Keras 2-vs-3 effects reported in public issue threads, each with the cells of a run that can speak to it.
Data, not code: this module only reads and validates it (pydantic); a bad file is a ConfigError naming the
file and the claim.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ConfigError
from harness.matrix.params import PARAMS, WORKLOADS

CLAIMS_FILE = Path(__file__).with_name("public_record.yaml")
#: the comparison operators a parameter condition may use
OPERATORS = ("gt", "ge", "lt", "le", "ne")
Scalar = str | int | float | bool
_MINOR = r"^\d+\.\d+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    ref: Annotated[str, Field(min_length=1)]
    url: Annotated[str, Field(pattern=r"^https://")]


class ImageCondition(_Strict):
    """Which images a side may come from: TF minor bounds (inclusive) and the Keras that ran as tf.keras."""

    tf_min: Annotated[str, Field(pattern=_MINOR)] | None = None
    tf_max: Annotated[str, Field(pattern=_MINOR)] | None = None
    keras: Literal[2, 3] | None = None


class Side(_Strict):
    """One side of a comparison: a workload, conditions on its parameters, conditions on the image."""

    workload: Annotated[str, Field(min_length=1)]
    params: dict[str, Scalar | dict[str, float]] = Field(default_factory=dict)
    image: ImageCondition = ImageCondition()

    @field_validator("params")
    @classmethod
    def _operators(cls, value: dict[str, Scalar | dict[str, float]]) -> dict[str, Scalar | dict[str, float]]:
        for name, cond in value.items():
            if isinstance(cond, dict) and (len(cond) != 1 or next(iter(cond)) not in OPERATORS):
                ops = ", ".join(OPERATORS)
                raise ValueError(f"params.{name}: expected a value or one of {{{ops}: number}}, got {cond}")
        return value

    @model_validator(mode="after")
    def _in_the_contract(self) -> Side:
        """A selection no cell can match (a workload or parameter the contract does not have, a value it
        refuses) would leave its claim "cannot speak to" for ever: refused here instead."""
        if self.workload not in WORKLOADS:
            raise ValueError(f"workload {self.workload!r}: expected one of {', '.join(WORKLOADS)}")
        for name, cond in self.params.items():
            spec = PARAMS.get(name)
            if spec is None or not spec.used_by(self.workload):
                raise ValueError(f"params.{name}: not a parameter of {self.workload} (see docs/contracts.md)")
            if isinstance(cond, dict) and spec.kind == "choice":
                raise ValueError(f"params.{name}: a comparison needs a number parameter, {name} is a choice")
            why = None if isinstance(cond, dict) else spec.check(cond)
            if why:
                raise ValueError(f"params.{name}: {why}")
        return self


class Comparison(_Strict):
    metric: Annotated[str, Field(pattern=r"^(step|peak_rss|phase:[a-z_]+)$")]
    pairing: Literal["same_image", "across_images"]
    numerator: Side
    denominator: Side


class Claim(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")]
    title: Annotated[str, Field(min_length=1)]
    sources: Annotated[list[Source], Field(min_length=1)]
    setup: str
    reported: str
    #: numerator / denominator as reported (> 1: the numerator was slower or larger)
    ratio: Annotated[float, Field(gt=0)]
    ratio_basis: str
    maintainers: str = ""
    compare: Comparison
    note: str = ""

    @model_validator(mode="after")
    def _distinct_sides(self) -> Claim:
        if self.compare.numerator == self.compare.denominator:
            raise ValueError("compare: numerator and denominator are the same selection")
        return self


class ClaimsFile(_Strict):
    version: Literal[1]
    claims: Annotated[list[Claim], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_ids(self) -> ClaimsFile:
        ids = [c.id for c in self.claims]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"claim ids must be unique; repeated: {', '.join(dupes)}")
        return self


def _where(exc: ValidationError, data: object) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        if len(loc) >= 2 and loc[0] == "claims" and isinstance(loc[1], int) and isinstance(data, dict):
            claims = data.get("claims")
            entry = claims[loc[1]] if isinstance(claims, list) and loc[1] < len(claims) else None
            if isinstance(entry, dict) and "id" in entry:
                loc[1] = f"{loc[1]} ({entry['id']})"
        lines.append(f"{'.'.join(str(p) for p in loc) or '(top level)'}: {err['msg']}")
    return lines


def load_claims(path: Path | None = None) -> list[Claim]:
    """The claims of `path` (default: the packaged file). ConfigError naming the file and field when bad."""
    path = path or CLAIMS_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the public record: {exc}") from exc
    try:
        return list(ClaimsFile.model_validate(data).claims)
    except ValidationError as exc:
        raise ConfigError(f"{path}: not a valid public record:\n  " + "\n  ".join(_where(exc, data))) from exc


@cache
def packaged_claims() -> tuple[Claim, ...]:
    return tuple(load_claims())
