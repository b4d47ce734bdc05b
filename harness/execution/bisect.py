"""`harness bisect`: find the first TF release whose step time for one cell is beyond a threshold relative to
a good release, building only the images it probes.

One run folder holds everything (manifest, a record per execution, calibration probes, the stored analysis)
plus `bisect.json` (`harness.results.bisectdoc`), rewritten after every probe. The search itself is
`harness.execution.bisectsearch`; this module measures a release for it (`ReleaseProber`):

* its image (and the good release's, once) is checked and made when it is first probed;
* a calibration probe (unless ``--no-probe``) measures the host's speed when the probe starts;
* rounds of two executions, the good release and the probed one, each in a fresh container, in alternating
  order (good first, then probed first, ...), as `harness run` interleaves its rounds; at least the minimum
  repeats, then a round at a time until the ratio CI (probed / good; the report's statistics, contended
  executions excluded) lies entirely beyond the threshold (``regressed``) or entirely within it (``not
  regressed``), or the probed release has ``max_repeats`` executions (``inconclusive``);
* the good release's executions from earlier probes are used too when the host's speed (calibration probe)
  at the start of that probe was within DRIFT_WARN_PCT of this probe's; without calibration probes they are
  not reused. Every probe records which good executions it used (own and reused) and why.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.analysis.pairwise import PairEvidence, pair_evidence
from harness.analysis.probes import DRIFT_WARN_PCT
from harness.errors import ConfigError
from harness.execution.availability import prepare_cells
from harness.execution.backends import open_backend
from harness.execution.bisectsearch import Answer, ProbeResult, bisect
from harness.execution.bisecttarget import BisectRequest, BisectTarget, Release, resolve_target
from harness.execution.datasets import prepare_data
from harness.execution.execute import Backend
from harness.execution.runner import Job, Runner, RunObserver
from harness.execution.session import RunSession, pin_threads
from harness.execution.settings import RunOptions, RunSettings
from harness.matrix.plan import Cell
from harness.matrix.source import MatrixSource
from harness.results.bisectdoc import BISECT_KIND, BISECT_SCHEMA_VERSION, write_bisect
from harness.results.store import RunStore, new_run_id
from harness.timestamps import utc_iso

__all__ = ["BisectRequest", "BisectResult", "BisectSession", "ReleaseProber", "run_bisect"]

Doc = dict[str, Any]
#: executions per side before a probe may decide: a CI needs two, and two executions give a CI that is
#: just their range (the expanded level at n = 2), so a noisy release could be decided by a coin flip
MIN_REPEATS = 3
REUSE_POLICY = (
    "each probe runs the good release interleaved with the probed one; the good release's executions of "
    f"earlier probes are used too when the calibration probe says the host's speed then was within "
    f"{DRIFT_WARN_PCT:g}% of its speed at the start of this probe (never without calibration probes)"
)


@dataclass
class BisectSession(RunSession):
    """A run session whose images are made one release at a time (only those probed), whose baseline is
    the good release, and whose calibration probe runs in the good release's image."""

    #: the good release's cell once its image is made
    good: Cell | None = None
    #: cells whose images were checked and made
    made: set[str] = field(default_factory=set)

    def prepare(self) -> None:
        """Data and the manifest (every candidate release's cell listed); no image is checked or made yet."""
        cells, data = prepare_data(
            self.source.cells,
            self.cache_dir,
            data_dir=self.data_dir,
            source=self.data_source,
            on_log=self.observer.note,
        )
        self.data_host = data.data_dir if data is not None and data.available else self.data_dir
        self.cells = pin_threads(cells, self.settings.cpuset)
        self.manifest = self._manifest()
        self.store.write_manifest(self.manifest)

    def make(self, cell_id: str) -> Cell:
        """Check and make the image of one cell (once); the manifest says what happened to it."""
        index = next(i for i, c in enumerate(self.cells) if c.cell_id == cell_id)
        cell = self.cells[index]
        if cell.available and cell_id not in self.made:
            self.observer.phase("build images", cell.image.name)
            (cell,) = prepare_cells(self.backend, [cell])
            self.made.add(cell_id)
            self.cells[index] = cell
            self.manifest["cells"] = [c.describe() for c in self.cells]
            self.store.write_manifest(self.manifest)
        return cell

    def runner(self) -> Runner:
        return self._runner()

    def calibrate(self, runner: Runner, label: str) -> float:
        """A calibration probe in the good release's image; its float32 matmul rate (nan: none)."""
        if not self.settings.probe or self.good is None or not self.good.available:
            return math.nan
        self.observer.phase("calibration probe", label)
        doc = runner.probe(self.good, self._probe_index, label)
        self._probe_index += 1
        rate = (doc.get("result") or {}).get("matmul_gflops")
        return float(rate) if isinstance(rate, int | float) and doc.get("status") == "ok" else math.nan

    def finish(self) -> None:
        from harness.analysis.stored import refresh  # pandas: only once the search is done

        self.manifest["finished_at"] = utc_iso(time.time())
        self.store.write_manifest(self.manifest)
        self.analysis = refresh(self.store.load())


@dataclass
class ProbeLog:
    """What one probe left: the good release's repeats it took and the host's speed when it started."""

    release: str
    good_repeats: list[int]
    host_gflops: float


@dataclass
class ReleaseProber:
    """Measures releases against the good one for the search (`bisectsearch.Prober`)."""

    session: BisectSession
    target: BisectTarget
    threshold_pct: float
    min_repeats: int
    max_repeats: int
    #: called with every finished probe's document entry (the document is rewritten)
    on_probe: Any = None
    docs: list[Doc] = field(default_factory=list)
    logs: list[ProbeLog] = field(default_factory=list)
    _repeats: dict[str, int] = field(default_factory=dict)

    @property
    def good(self) -> Release:
        return self.target.releases[0]

    def probe(self, release: str, purpose: str, bracket: tuple[str, str]) -> ProbeResult:
        rel = self.target.release(release)
        self.session.observer.phase(f"probe {len(self.docs) + 1}: TF {release}", purpose)
        good = self.session.make(self.good.cell.cell_id)
        self.session.good = good
        cell = self.session.make(rel.cell.cell_id)
        entry = self._entry(rel, purpose, bracket)
        if not good.available or not cell.available:
            which = good if not good.available else cell
            why = f"{which.image.name} cannot run here: {which.reason or 'unavailable'}"
            return self._done(entry, ProbeResult(release, "skipped", why))
        runner = self.session.runner()
        rate = self.session.calibrate(runner, f"bisect probe {len(self.docs) + 1}: {release}")
        reused, sources, note = self._reuse(rate)
        entry.update(host_gflops=None if math.isnan(rate) else rate, reuse_note=note)
        entry.update(good_reused=sorted(reused), reused_from=sources)
        own: list[int] = []
        mine: list[int] = []
        self.session.observer.start(2 * self.max_repeats)
        while True:
            order = [good, cell] if entry["rounds"] % 2 == 0 else [cell, good]
            jobs = [Job(c, self._next(c.cell_id)) for c in order]
            runner.run(jobs, announce=False)
            own += [j.repeat for j in jobs if j.cell is good]
            mine += [j.repeat for j in jobs if j.cell is cell]
            entry["rounds"] += 1
            entry.update(good_repeats=list(own), probed_repeats=list(mine))
            if entry["rounds"] < self.min_repeats:
                continue
            ev = self._evidence(rel, set(own) | reused)
            self._fill(entry, ev)
            result = self._decide(release, ev, entry["rounds"])
            if result is not None:
                self.logs.append(ProbeLog(release, own, rate))
                return self._done(entry, result)

    def _decide(self, release: str, ev: PairEvidence, rounds: int) -> ProbeResult | None:
        good = self.good.release
        evidence = {"ratio": ev.ratio, "ratio_lo": ev.ratio_lo, "ratio_hi": ev.ratio_hi}
        ci = f"ratio {ev.ratio:.3f} [{ev.ratio_lo:.3f}, {ev.ratio_hi:.3f}] vs {good}"
        if not math.isfinite(ev.ratio_lo):
            why = f"fewer than two usable executions a side; {ev.n_contended} contended"
            ci = f"no ratio CI vs {good} ({why})"
        limit = f"{1 + self.threshold_pct / 100:.3f}"
        if ev.b_n_ok == 0 or ev.a_n_ok == 0:
            side = release if ev.b_n_ok == 0 else good
            return ProbeResult(release, "skipped", f"no execution of {side} succeeded", evidence)
        if ev.side == "beyond":
            return ProbeResult(release, "regressed", f"{ci}: the whole CI is above {limit}", evidence)
        if ev.side == "within":
            return ProbeResult(release, "not regressed", f"{ci}: the whole CI is at most {limit}", evidence)
        if rounds >= self.max_repeats:
            across = f" reaches across {limit}" if math.isfinite(ev.ratio_lo) else ""
            why = f"{ci}{across} after {rounds} executions each (the repeat cap)"
            return ProbeResult(release, "inconclusive", why, evidence)
        return None

    def _evidence(self, rel: Release, good_repeats: set[int]) -> PairEvidence:
        records = list(self.session.store.iter_records())
        return pair_evidence(
            records,
            self.good.cell.cell_id,
            rel.cell.cell_id,
            good_repeats,
            self.threshold_pct,
            self.session.settings.margin_pct,
            names=(self.good.image.name, rel.image.name),
        )

    def _reuse(self, rate: float) -> tuple[set[int], list[int], str]:
        """The good release's repeats of earlier probes taken on a host of the same speed."""
        if not self.logs:
            return set(), [], "first probe: nothing to reuse"
        if math.isnan(rate):
            return set(), [], "not reused: no calibration probe to tell whether the host's speed changed"
        reused: set[int] = set()
        sources: list[int] = []
        moved: list[str] = []
        for i, log in enumerate(self.logs):
            drift = abs(rate / log.host_gflops - 1) * 100 if log.host_gflops > 0 else math.nan
            if math.isfinite(drift) and drift <= DRIFT_WARN_PCT:
                reused.update(log.good_repeats)
                sources.append(i)
            else:
                moved.append(f"probe {i} ({log.release}: {drift:.1f}%)")
        note = f"reused {len(reused)} execution(s) of earlier probes (host speed within {DRIFT_WARN_PCT:g}%)"
        if moved:
            note += f"; not from {', '.join(moved)}: host speed moved more"
        return reused, sources, note

    def _next(self, cell_id: str) -> int:
        n = self._repeats.get(cell_id, 0)
        self._repeats[cell_id] = n + 1
        return n

    def _entry(self, rel: Release, purpose: str, bracket: tuple[str, str]) -> Doc:
        return {
            "index": len(self.docs),
            "release": rel.release,
            "image": rel.image.name,
            "cell_id": rel.cell.cell_id,
            "purpose": purpose,
            "bracket": list(bracket),
            "decision": "skipped",
            "reason": "",
            **dict.fromkeys(("ratio", "ratio_lo", "ratio_hi", "verdict_kind", "verdict")),
            **dict.fromkeys(("step_s", "good_step_s", "host_gflops")),
            "rounds": 0,
            **{k: [] for k in ("probed_repeats", "good_repeats", "good_reused", "reused_from")},
            "n_probed": 0,
            "n_good": 0,
            "n_contended": 0,
            "reuse_note": "",
        }

    @staticmethod
    def _fill(entry: Doc, ev: PairEvidence) -> None:
        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        entry.update(
            ratio=num(ev.ratio),
            ratio_lo=num(ev.ratio_lo),
            ratio_hi=num(ev.ratio_hi),
            verdict_kind=ev.kind,
            verdict=ev.verdict,
            step_s=num(ev.b_step_s),
            good_step_s=num(ev.a_step_s),
            n_probed=ev.b_n_exec,
            n_good=ev.a_n_exec,
            n_contended=ev.n_contended,
        )

    def _done(self, entry: Doc, result: ProbeResult) -> ProbeResult:
        entry.update(decision=result.decision, reason=result.reason)
        self.docs.append(entry)
        if self.on_probe is not None:
            self.on_probe()
        return result


@dataclass(frozen=True)
class BisectResult:
    run_id: str
    path: Path
    doc: Doc
    answer: Answer | None
    interrupted: bool = False

    def exit_code(self) -> int:
        """0: an answer (a release, or no regression); 1: inconclusive; 130: interrupted."""
        if self.interrupted or self.answer is None:
            return 130
        return 1 if self.answer.kind == "inconclusive" else 0


def bisect_source(source: MatrixSource, target: BisectTarget) -> MatrixSource:
    """The matrix source of the run: the candidate releases' cells, the good release as the baseline."""
    cells = [r.cell for r in target.releases]
    plan = replace(source.plan, cells=cells, baseline=target.releases[0].image.name)
    return replace(source, plan=plan, cells=cells, shard=None)


def bisect_doc(run_id: str, source: MatrixSource, settings: RunSettings, prober: ReleaseProber) -> Doc:
    target = prober.target
    return {
        "kind": BISECT_KIND,
        "schema_version": BISECT_SCHEMA_VERSION,
        "run_id": run_id,
        "matrix_path": str(source.path),
        "profile": settings.profile,
        "cell": {"device": target.device, "workload": target.workload, "params": dict(target.params)},
        "threshold_pct": prober.threshold_pct,
        "margin_pct": settings.margin_pct,
        "min_repeats": prober.min_repeats,
        "max_repeats": prober.max_repeats,
        "releases": [
            {"release": r.release, "tf": r.image.tf, "image": r.image.name, "cell_id": r.cell.cell_id}
            for r in target.releases
        ],
        "good": target.releases[0].release,
        "bad": target.releases[-1].release,
        "reuse_policy": REUSE_POLICY,
        "started_at": utc_iso(time.time()),
        "finished_at": None,
        "probes": prober.docs,
        "answer": None,
    }


def run_bisect(
    source: MatrixSource,
    settings: RunSettings,
    options: RunOptions,
    request: BisectRequest,
    observer: RunObserver,
    backend: Backend | None = None,
) -> BisectResult:
    """Check the request, then search; every probe is stored as it ends (Ctrl-C keeps them)."""
    target = resolve_target(source, request)
    min_repeats = max(MIN_REPEATS, settings.repeats)
    if settings.max_repeats < min_repeats:
        raise ConfigError(
            f"--max-repeats: expected at least {min_repeats} (the minimum executions per side), got "
            f"{settings.max_repeats}"
        )
    src = bisect_source(source, target)
    backend = open_backend(options, observer) if backend is None else backend
    run_id = new_run_id(f"bisect-{request.workload}", time.time(), secrets.token_hex(3))
    store = RunStore(options.results_dir / run_id)
    session = BisectSession(
        src, settings, backend, store, run_id, options.cache(), options.data_dir, observer=observer
    )
    session.prepare()
    prober = ReleaseProber(session, target, request.threshold_pct, min_repeats, settings.max_repeats)
    doc = bisect_doc(run_id, src, settings, prober)
    prober.on_probe = lambda: write_bisect(store.path, doc)
    write_bisect(store.path, doc)
    try:
        search = bisect(target.names, prober)
    except KeyboardInterrupt:
        backend.cleanup()
        return BisectResult(run_id, store.path, doc, None, interrupted=True)
    answer = search.answer()
    doc["answer"] = {
        "kind": answer.kind,
        "last_good": answer.last_good,
        "first_bad": answer.first_bad,
        "undecided": answer.undecided,
        "text": answer.text,
    }
    doc["finished_at"] = utc_iso(time.time())
    write_bisect(store.path, doc)
    session.finish()
    return BisectResult(run_id, store.path, doc, answer)
