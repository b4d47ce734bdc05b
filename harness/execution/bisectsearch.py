"""The search of `harness bisect`, pure: which release to probe next, and what the probes add up to.

Releases are ordered (oldest first); the first is known good (the reference every ratio is taken against),
the last is claimed bad. A `Prober` measures one release and decides, from the CI of its step-time ratio
against the good release, whether it regressed beyond the threshold:

* ``regressed``: the whole CI is beyond the threshold;
* ``not regressed``: the whole CI is within it;
* ``inconclusive``: the CI still reaches across the threshold when the repeat cap is hit (noise);
* ``skipped``: the release could not be measured (its image did not build, every execution failed).

The search, like asv's ``find`` over commits (and ``git bisect`` with ``skip``):

1. The bad end is probed first. Not regressed: the answer is "no regression" (with that probe as the
   evidence); inconclusive or skipped: the answer is "inconclusive" -- there is nothing to bisect.
2. Binary search over the bracket (last known good, first known bad): probe the untried release nearest the
   middle; a regressed release becomes the bracket's bad end, a not-regressed one its good end. An
   inconclusive or skipped release is not decided: it stays inside the bracket and the search goes on with
   the other untried releases inside it, nearest the middle first (so a noisy release does not stop the
   search, but it can keep it from being exact).
3. The answer is ``found`` when the bracket has no release between its ends (the first bad release and the
   last good one are adjacent), else ``inconclusive`` with the bracket and the undecided releases in it.

Monotonicity is assumed as by every bisection: once a release regressed, the later ones stay regressed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Decision = Literal["regressed", "not regressed", "inconclusive", "skipped"]
AnswerKind = Literal["found", "no regression", "inconclusive"]
DECISIONS: tuple[Decision, ...] = ("regressed", "not regressed", "inconclusive", "skipped")


@dataclass(frozen=True)
class ProbeResult:
    """One probed release: the decision, why, and the evidence (ratio, CI, executions: the prober's)."""

    release: str
    decision: Decision
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


class Prober(Protocol):
    def probe(self, release: str, purpose: str, bracket: tuple[str, str]) -> ProbeResult:
        """Measure `release` against the good release until the decision is made (or cannot be)."""
        ...


@dataclass(frozen=True)
class Answer:
    kind: AnswerKind
    #: the last release known good and the first known bad (found: adjacent; inconclusive: the bracket)
    last_good: str | None
    first_bad: str | None
    #: releases inside the bracket that were probed without a decision
    undecided: list[str]
    text: str


@dataclass
class Search:
    """The state of one bisection: the ordered releases and every probe so far, in order."""

    releases: Sequence[str]
    probes: list[ProbeResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.releases) < 2:
            raise ValueError("a bisection needs a good and a later bad release")
        if len(set(self.releases)) != len(self.releases):
            raise ValueError("releases must be distinct")

    def bracket(self) -> tuple[int, int]:
        """(index of the last known good, index of the first known bad) from the probes so far."""
        lo, hi = 0, len(self.releases) - 1
        for p in self.probes:
            i = self.releases.index(p.release)
            if p.decision == "regressed" and i < hi:
                hi = i
            elif p.decision == "not regressed" and i > lo:
                lo = i
        return lo, hi

    def next_release(self) -> str | None:
        """The bad end first; then the untried release inside the bracket nearest its middle (lower on a
        tie); None when the search is over."""
        tried = {p.release for p in self.probes}
        last = self.releases[-1]
        if last not in tried:
            return last
        end = self.probes[[p.release for p in self.probes].index(last)]
        if end.decision != "regressed":
            return None
        lo, hi = self.bracket()
        inside = [i for i in range(lo + 1, hi) if self.releases[i] not in tried]
        if not inside:
            return None
        mid = (lo + hi) / 2
        return self.releases[min(inside, key=lambda i: (abs(i - mid), i))]

    def answer(self) -> Answer:
        last = self.releases[-1]
        good = self.releases[0]
        end = next((p for p in self.probes if p.release == last), None)
        if end is None:
            return Answer("inconclusive", good, None, [], f"{last} was not probed")
        if end.decision == "not regressed":
            return Answer(
                "no regression",
                None,
                None,
                [],
                f"no regression beyond the threshold between {good} and {last}: {end.reason}",
            )
        if end.decision != "regressed":
            return Answer(
                "inconclusive",
                good,
                None,
                [last],
                f"cannot tell whether {last} regressed against {good}: {end.reason}",
            )
        lo, hi = self.bracket()
        first_bad, last_good = self.releases[hi], self.releases[lo]
        undecided = [p.release for p in self.probes if lo < self.releases.index(p.release) < hi]
        if hi - lo == 1:
            return Answer(
                "found", last_good, first_bad, [], f"{first_bad} is the first release that regressed"
            )
        why = "; ".join(f"{p.release}: {p.reason}" for p in self.probes if p.release in undecided)
        return Answer(
            "inconclusive",
            last_good,
            first_bad,
            undecided,
            f"the first regressed release is after {last_good} and at most {first_bad}; undecided: {why}",
        )


def bisect(releases: Sequence[str], prober: Prober) -> Search:
    """Run the whole search with `prober`; the returned `Search` holds every probe and the answer."""
    search = Search(releases)
    while (release := search.next_release()) is not None:
        lo, hi = search.bracket()
        purpose = "verify bad end" if release == releases[-1] else "bisect"
        result = prober.probe(release, purpose, (releases[lo], releases[hi]))
        if result.release != release or result.decision not in DECISIONS:
            raise ValueError(f"prober answered {result.release!r}/{result.decision!r} for {release!r}")
        search.probes.append(result)
    return search
