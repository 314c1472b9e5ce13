"""The progress bar ``fit`` / ``evaluate`` / ``predict`` print, as Keras 3
prints it (keras/src/utils/progbar.py): with ``verbose=1`` a live line

    12/32 ━━━━━━━╺━━━━━━━━━━━━ 0s 3ms/step - loss: 0.1234

redrawn in place (``\\r``) with an ETA, then the final line with the elapsed
time; with ``verbose=2`` only the final line (``32/32 - 0s - 3ms/step - loss:
0.1234``). Bold and colour escapes are Keras' own.
"""
from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

__all__ = ["Progbar", "print_msg", "resolve_verbose"]


def print_msg(message, line_break=True):
    """Write to stdout and flush (Keras' io_utils.print_msg)."""
    sys.stdout.write(message + "\n" if line_break else message)
    sys.stdout.flush()


def resolve_verbose(verbose):
    """``"auto"``: 1 (the live bar) in a terminal or a notebook, 2 (a line per
    epoch) otherwise; 0, 1 and 2 as given."""
    if verbose == "auto":
        interactive = (getattr(sys.stdout, "isatty", lambda: False)()
                       or "ipykernel" in sys.modules)
        return 1 if interactive else 2
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _format_time(seconds, unit):
    if seconds >= 1 or seconds == 0:
        return f" {seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f" {seconds * 1000.0:.0f}ms/{unit}"
    return f" {seconds * 1000000.0:.0f}us/{unit}"


def _format_value(v, absolute):
    if v is None:
        return " None"
    big = abs(v) > 1e-3 if absolute else v > 1e-3
    return f" {v:.4f}" if big else f" {v:.4e}"


class Progbar:
    """Keras' Progbar: ``update(current, values=[(name, value)], finalize=None)``.

    Values are averaged over the steps since they were last shown, unless
    named in ``stateful_metrics`` (shown as given); with ``stateless_metrics``
    only those are averaged (the training loop passes an empty set: its values
    are running means already).
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None,
                 stateless_metrics=None, unit_name="step"):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Only one of `stateful_metrics` or `stateless_metrics` can be "
                             "provided.")
        self.stateful_metrics = None if stateless_metrics is not None else set(
            stateful_metrics or ())
        self.stateless_metrics = None if stateless_metrics is None else set(stateless_metrics)
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        # Keras redraws in place on a terminal, a notebook, or any POSIX system
        self._dynamic_display = ((hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
                                 or "ipykernel" in sys.modules or "posix" in sys.modules
                                 or "PYCHARM_HOSTED" in os.environ)
        self._values = {}
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._prev_total_width = 0
        self._seen = 0

    def _step_time(self, current, now):
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            per = (now - self._time_after_first_step) / (current - 1)
        else:
            per = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per

    def update(self, current, values=None, finalize=None):
        if finalize is None:
            finalize = False if self.target is None else current >= self.target
        for k, v in values or []:
            if self.stateful_metrics is not None:
                averaged = k not in self.stateful_metrics
            else:
                averaged = k in self.stateless_metrics
            if not averaged or finalize:
                self._values[k] = [v, 1]
            else:
                base = max(current - self._seen, 1)
                if k not in self._values:
                    self._values[k] = [v * base, base]
                else:
                    self._values[k][0] += v * base
                    self._values[k][1] += base
        self._seen = current
        now = time.time()
        per = self._step_time(current, now)
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return
            message = ("\b" * self._prev_total_width + "\r") if self._dynamic_display else "\n"
            special = 0
            if self.target is not None and self.target > 0:
                digits = int(math.log10(self.target)) + 1
                bar = f"\x1b[1m{current:{digits}d}/{self.target}\x1b[0m "
                special += 8
                done = int(self.width * float(current) / self.target)
                if done > 0:
                    bar += f"\33[32m{'━' * done}\x1b[0m"
                    special += 9
                bar += f"\33[37m{'━' * (self.width - done)}\x1b[0m"
                special += 9
            else:
                bar = "%7d/Unknown" % current
            message += bar
            if self.target is not None and self.target > 0 and not finalize:
                eta = per * (self.target - current)
                if eta > 3600:
                    eta_s = "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
                elif eta > 60:
                    eta_s = "%d:%02d" % (eta // 60, eta % 60)
                else:
                    eta_s = "%ds" % eta
                info = f" \x1b[1m{eta_s}\x1b[0m"
            else:
                info = f" \x1b[1m{now - self._start:.0f}s\x1b[0m"
            special += 8
            info += _format_time(per, self.unit_name)
            for k, (total, count) in self._values.items():
                info += f" - {k}:" + _format_value(np.mean(total) / max(1, count), True)
            message += info
            total = len(bar) + len(info) - special
            if self._prev_total_width > total:
                message += " " * (self._prev_total_width - total)
            if finalize:
                message += "\n"
            print_msg(message, line_break=False)
            self._prev_total_width = total
        elif self.verbose == 2 and finalize and self.target is not None and self.target > 0:
            digits = int(math.log10(self.target)) + 1
            info = f"{current:{digits}d}/{self.target} - {now - self._start:.0f}s"
            info += f" -{_format_time(per, self.unit_name)}"
            for k, (total, count) in self._values.items():
                info += f" - {k}:" + _format_value(np.mean(total) / max(1, count), False)
            print_msg(info + "\n", line_break=False)
        self._last_update = now

    def add(self, n, values=None):
        self.update(self._seen + n, values)
