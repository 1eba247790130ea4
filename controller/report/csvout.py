"""The report as one csv for auditors and spreadsheets: a row per OPD and direction.

    render(doc) -> str        UTF-8 text with a byte-order mark (Excel then reads it as UTF-8), header first

The numbers are the json document's, unformatted: bit/s, bytes, whole rupiah, shares as
fractions (0.25 is 25 %); an empty cell is null (no samples, no cap). Each row carries the
period and whether the history is SIMULATED, so a file lifted out of its mail stands alone.
The cost columns belong to the OPD, not to a direction: they are on its download row only
and empty on its upload row, so that a column's sum is the budget.
"""

from __future__ import annotations

import csv
import io
from typing import Any

WINDOWS = ("office", "outside", "all")
STATS = ("mean_bps", "p95_bps", "peak_bps", "demand_p95_bps", "at_cap_share", "samples")
COST = ("by_cap_idr", "by_use_idr", "cap_share", "use_share", "idr_per_mbps_used")
HEADER = (
    ["period_from", "period_to", "simulated", "opd", "name", "kind", "direction", "cap_kbps"]
    + ["action", "suggested_kbps"]
    + [f"{w}_{s}" for w in WINDOWS for s in STATS]
    + ["volume_bytes", "monthly_volume_bytes", "dropped_bytes", "at_cap_office_share"]
    + list(COST)
    + ["recommendation_en", "recommendation_id"]
)


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def rows(doc: dict[str, Any]) -> list[list[Any]]:
    """The table without its header: two rows per OPD (down, up) in the document's order."""
    out = []
    for o in doc["opds"]:
        for direction in ("down", "up"):
            d = o[direction]
            rec = d["recommendation"]
            row: list[Any] = [
                doc["period"]["from"],
                doc["period"]["to"],
                doc["simulated"],
                o["opd"],
                o["name"],
                o["kind"],
                direction,
                o["cap_kbps"][direction],
                rec["action"],
                rec["suggested_kbps"],
            ]
            row += [d[w][s] for w in WINDOWS for s in STATS]
            row += [d["volume_bytes"], d["monthly_volume_bytes"], d["dropped_bytes"], d["at_cap_office_share"]]
            row += [o["cost"][c] if direction == "down" else None for c in COST]
            row += [rec["text"]["en"], rec["text"]["id"]]
            out.append([_cell(v) for v in row])
    return out


def render(doc: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")  # RFC 4180
    w.writerow(HEADER)
    w.writerows(rows(doc))
    return "\ufeff" + buf.getvalue()
