"""The pure search of `harness bisect` against fake probers: a planted regression is found in log2 probes,
undecided releases widen the answer to a bracket, an unregressed or undecided bad end stops the search."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.execution.bisectsearch import Decision, ProbeResult, Search, bisect

RELEASES = [f"2.{m}" for m in range(12, 22)]  # 2.12 ... 2.21


@dataclass
class Planted:
    """Releases from `first_bad` on regressed; `noisy` ones inconclusive, `broken` ones skipped."""

    releases: list[str]
    first_bad: int | None
    noisy: frozenset[str] = frozenset()
    broken: frozenset[str] = frozenset()
    calls: list[tuple[str, str, tuple[str, str]]] = field(default_factory=list)

    def probe(self, release: str, purpose: str, bracket: tuple[str, str]) -> ProbeResult:
        self.calls.append((release, purpose, bracket))
        decision: Decision
        if release in self.broken:
            decision = "skipped"
        elif release in self.noisy:
            decision = "inconclusive"
        elif self.first_bad is not None and self.releases.index(release) >= self.first_bad:
            decision = "regressed"
        else:
            decision = "not regressed"
        return ProbeResult(release, decision, f"planted {decision}")


@given(n=st.integers(2, 40), data=st.data())
def test_a_planted_regression_is_found_in_logarithmic_probes(n: int, data: st.DataObject) -> None:
    releases = [f"r{i}" for i in range(n)]
    first_bad = data.draw(st.integers(1, n - 1))
    prober = Planted(releases, first_bad)
    answer = bisect(releases, prober).answer()
    assert answer.kind == "found"
    assert (answer.first_bad, answer.last_good) == (releases[first_bad], releases[first_bad - 1])
    assert len(prober.calls) <= 1 + math.ceil(math.log2(max(n - 1, 1)))
    assert prober.calls[0][:2] == (releases[-1], "verify bad end")
    assert len({c[0] for c in prober.calls}) == len(prober.calls), "a release was probed twice"


def test_probe_order_and_brackets_for_a_regression_at_2_16() -> None:
    prober = Planted(RELEASES, RELEASES.index("2.16"))
    search = bisect(RELEASES, prober)
    assert [c[0] for c in prober.calls] == ["2.21", "2.16", "2.14", "2.15"]
    assert [c[2] for c in prober.calls] == [
        ("2.12", "2.21"),
        ("2.12", "2.21"),
        ("2.12", "2.16"),
        ("2.14", "2.16"),
    ]
    assert search.answer().text == "2.16 is the first release that regressed"


def test_bad_end_not_regressed_means_no_regression() -> None:
    prober = Planted(RELEASES, None)
    answer = bisect(RELEASES, prober).answer()
    assert answer.kind == "no regression" and answer.first_bad is None
    assert [c[0] for c in prober.calls] == ["2.21"]
    assert "no regression beyond the threshold between 2.12 and 2.21" in answer.text


@pytest.mark.parametrize("why", ["noisy", "broken"])
def test_an_undecided_bad_end_stops_the_search(why: str) -> None:
    prober = Planted(RELEASES, 3, **{why: frozenset({"2.21"})})  # type: ignore[arg-type]
    answer = bisect(RELEASES, prober).answer()
    assert answer.kind == "inconclusive" and answer.undecided == ["2.21"]
    assert len(prober.calls) == 1
    assert answer.text.startswith("cannot tell whether 2.21 regressed against 2.12: planted")


def test_an_inconclusive_release_is_stepped_around_and_leaves_a_bracket() -> None:
    # truth: 2.16 first bad; 2.16 itself is too noisy to decide
    prober = Planted(RELEASES, RELEASES.index("2.16"), noisy=frozenset({"2.16"}))
    answer = bisect(RELEASES, prober).answer()
    assert answer.kind == "inconclusive"
    assert (answer.last_good, answer.first_bad, answer.undecided) == ("2.15", "2.17", ["2.16"])
    assert "2.16: planted inconclusive" in answer.text


def test_a_skipped_release_next_to_a_decided_one_still_gives_an_exact_answer() -> None:
    prober = Planted(RELEASES, RELEASES.index("2.16"), broken=frozenset({"2.19"}))
    answer = bisect(RELEASES, prober).answer()
    assert (answer.kind, answer.first_bad, answer.last_good) == ("found", "2.16", "2.15")


def test_search_refuses_too_few_or_repeated_releases() -> None:
    with pytest.raises(ValueError, match="good and a later bad"):
        Search(["2.12"])
    with pytest.raises(ValueError, match="distinct"):
        Search(["2.12", "2.12"])
