"""Clocks, steady-state window timing and host memory probes (stdlib only; Python 3.6 grammar)."""

import os
import resource
import time

clock = time.perf_counter
#: CPU seconds of this process, all threads (CLOCK_PROCESS_CPUTIME_ID on Linux)
cpu_clock = time.process_time


def process_age_s():
    """Seconds since this process started (kernel start time vs /proc/uptime), or None off Linux."""
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        # field 22 (starttime, clock ticks since boot); comm (field 2) may contain spaces -> split after ')'
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        return max(0.0, uptime - start_ticks / float(os.sysconf("SC_CLK_TCK")))
    except (OSError, ValueError, IndexError):
        return None


def host_peak_rss_bytes():
    """Peak resident set size: VmHWM from /proc/self/status, else ru_maxrss (KiB on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class Stopwatch(object):
    """Usage: with Stopwatch(phases, 'build'): ... -> phases['build'] = elapsed seconds."""

    def __init__(self, phases, name):
        self.phases = phases
        self.name = name
        self.start = None

    def __enter__(self):
        self.start = clock()
        return self

    def __exit__(self, *exc):
        self.phases[self.name] = clock() - self.start
        return False


class WindowTimer(object):
    """Steady-state step timing in windows of `window` steps.

    step_end(sync) is called after every training step. Once `warmup` steps are done (and never before
    the first step of an epoch has finished) a window opens: sync() is called so that queued device work
    is finished, then the clock starts. After `window` more steps, sync() again and the window's mean
    step time is recorded. epoch_begin() discards a partial window, so windows never span epoch
    boundaries (iterator re-creation, epoch-end callbacks) -- unless `span_epochs`: then windows run on
    across epochs and a step's time includes its epoch's end and the next one's start (tiny_fit, whose
    epochs are one step long and whose per-epoch cost is what it measures).
    """

    def __init__(self, warmup, window, wall_clock=None, process_clock=None, span_epochs=False):
        self.warmup = warmup
        self.window = window
        self.span_epochs = span_epochs
        self._clock = wall_clock or clock
        self._cpu = process_clock or cpu_clock
        self.samples = []
        self.cpu_samples = []
        self.global_step = 0
        self._t0 = None
        self._c0 = None
        self._n = 0

    def epoch_begin(self):
        if self.span_epochs:
            return
        self._t0 = None
        self._n = 0

    def step_end(self, sync):
        self.global_step += 1
        if self.global_step < self.warmup:
            return
        if self._t0 is None:
            sync()
            self._t0 = self._clock()
            self._c0 = self._cpu()
            self._n = 0
            return
        self._n += 1
        if self._n == self.window:
            sync()
            now, cpu_now = self._clock(), self._cpu()
            self.samples.append((now - self._t0) / self.window)
            self.cpu_samples.append((cpu_now - self._c0) / self.window)
            self._t0, self._c0 = now, cpu_now
            self._n = 0


def time_calls(call, warmup, calls, window, wall_clock=None, process_clock=None):
    """Per-call timing: call() `warmup` times untimed, then `calls` times in windows of `window` calls.

    Returns {"first_s": seconds of the very first call, "samples": per-window mean wall seconds per call,
    "cpu_samples": per-window process CPU seconds per call}. Calls after the last full window run but
    are no sample (as WindowTimer drops a partial window).
    """
    wall, cpu = wall_clock or clock, process_clock or cpu_clock
    out = {"first_s": None, "samples": [], "cpu_samples": []}
    t0 = c0 = None
    for i in range(warmup + calls):
        timed = i - warmup  # index among the timed calls (negative: warm-up)
        if timed >= 0 and timed % window == 0:
            t0, c0 = wall(), cpu()
        start = wall() if i == 0 else None  # no extra clock read inside a window
        call()
        if i == 0:
            out["first_s"] = wall() - start
        if timed >= 0 and (timed + 1) % window == 0:
            now, cpu_now = wall(), cpu()
            out["samples"].append((now - t0) / window)
            out["cpu_samples"].append((cpu_now - c0) / window)
    return out


class EpochRecorder(object):
    """Per-epoch wall time, loss and accuracy."""

    def __init__(self):
        self.times = []
        self.losses = []
        self.accuracies = []
        self._t0 = None

    def begin(self):
        self._t0 = clock()

    def end(self, loss, accuracy):
        self.times.append(clock() - self._t0)
        self.losses.append(None if loss is None else float(loss))
        self.accuracies.append(None if accuracy is None else float(accuracy))


def median(values):
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def fill_timing(doc, spec, timer, epochs, steps_per_epoch):
    """Copy WindowTimer/EpochRecorder results into the result document."""
    steps = doc["steps"]
    steps["warmup_steps"] = spec["warmup_steps"]
    steps["window_steps"] = spec["window_steps"]
    steps["step_time_s"] = list(timer.samples)
    steps["cpu_time_s"] = list(timer.cpu_samples)
    steps["steps_measured"] = len(timer.samples) * spec["window_steps"]
    steps["total_steps"] = timer.global_step
    steps["steps_per_epoch"] = steps_per_epoch
    doc["epochs"] = {"epoch_time_s": epochs.times, "loss": epochs.losses, "accuracy": epochs.accuracies}
    mid = median(timer.samples)
    doc["throughput_samples_per_s"] = spec["batch_size"] / mid if mid else None
    if epochs.losses:
        doc["quality"]["final_loss"] = epochs.losses[-1]
        doc["quality"]["final_accuracy"] = epochs.accuracies[-1]
