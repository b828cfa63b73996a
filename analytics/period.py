"""Periods as the command line and the page take them: 7d, 24h, 2w, 90m."""

from __future__ import annotations

UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_period(text: str) -> float:
    """Seconds in a period like "7d" (m, h, d or w); ValueError with the accepted form otherwise."""
    t = text.strip().lower()
    if len(t) >= 2 and t[-1] in UNITS and t[:-1].isdigit() and int(t[:-1]) > 0:
        return int(t[:-1]) * UNITS[t[-1]]
    raise ValueError(f"period {text!r}: give a whole number and a unit, m, h, d or w (e.g. 7d, 24h)")
