"""Render an `eo-edge faults` record (schema ``eo-edge-faults/1``): its summary table as Markdown and on a rich console."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def table_rows(res: dict[str, Any]) -> list[list[str]]:
    """Rows of the summary table: file, precision, class, k, clean, mean, worst, std, mean drop (all %)."""
    out = []
    for f in res["files"]:
        for r in f["rows"]:
            out.append([Path(f["file"]).name, f["format"], r["class"], str(r["k"]), f"{f['clean_top1']:.2f}",
                        f"{r['mean_top1']:.2f}", f"{r['min_top1']:.2f}", f"{r['std_top1']:.2f}", f"{r['mean_drop']:.2f}"])
    return out


HEADERS = ["file", "precision", "position class", "k bits", "clean top-1 %", "mean top-1 %", "worst top-1 %",
           "std", "mean drop pts"]


def markdown(res: dict[str, Any]) -> str:
    """The summary table as GitHub markdown, with the command, data and repeats above it."""
    first = res["files"][0]["data"] if res["files"] else {}
    lines = [f"Command: `{res['command']}`", ""] if res.get("command") else []
    lines += [f"Data: {first.get('n_images')} images of the {first.get('kind')} ({first.get('source')}; "
              f"{first.get('selection')}); "
              f"{res['options']['repeats']} repeats per row, seed {res['options']['seed']}; worst = lowest top-1 "
              "of the repeats.", "",
              "| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" if i < 3 else "---:" for i in range(len(HEADERS))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(res)]
    return "\n".join(lines) + "\n"


def print_table(res: dict[str, Any], console) -> None:
    """The summary table on a rich console."""
    from rich.table import Table

    t = Table(title=f"bit-flip tolerance (top-1 %, {res['options']['repeats']} repeats per row, seed {res['options']['seed']})")
    for i, h in enumerate(HEADERS):
        t.add_column(h, justify="left" if i < 3 else "right")
    for r in table_rows(res):
        t.add_row(*r)
    console.print(t)
