"""Measuring the code against itself: :mod:`welavae.perf.ab`, a same-run A/B against a reference version."""
from .ab import Installation, alternation, current_installation, ratio_stats, resolve_baseline, run_ab, table

__all__ = ["Installation", "alternation", "current_installation", "ratio_stats", "resolve_baseline", "run_ab", "table"]
