"""Render an ``eo-edge bench`` run (JSON schema ``eo-edge-bench/1``): checks, Markdown, tables, plots.

One concern per module:

* :mod:`.schema`: the schema's one owner (schema string, enums, limits, :func:`validate`,
  :func:`check`, :func:`load_run`, :func:`cap_samples`); ``docs/bench-schema.md`` documents it.
* :mod:`.formatting`: one number format per unit (:func:`fmt`, :data:`UNIT_DIGITS`).
* :mod:`.markdown`: :func:`render_markdown`, :func:`print_table`.
* :mod:`.plots`: :func:`plot_all`, :func:`pareto_front`.
* :mod:`.compare`: :func:`compare_markdown` (several runs).
* :mod:`.writer`: :func:`write_report` (``report.md`` plus the figures).
"""

from ..artifact.forms import PRECISIONS
from ..schemas import MAX_SAMPLES, cap_samples
from .compare import compare_markdown
from .formatting import UNIT_DIGITS, fmt, fmt_millions, fmt_signed
from .markdown import CONSOLE_COLUMNS, MAIN_COLUMNS, PAPER, print_table, render_markdown
from .plots import PLOTS, pareto_front, plot_all
from .schema import NA, ROLES, SCHEMA, check, load_run, validate
from .writer import write_report

__all__ = ["CONSOLE_COLUMNS", "MAIN_COLUMNS", "MAX_SAMPLES", "NA", "PAPER", "PLOTS", "PRECISIONS", "ROLES",
           "SCHEMA", "UNIT_DIGITS", "cap_samples", "check", "compare_markdown", "fmt", "fmt_millions", "fmt_signed", "load_run",
           "pareto_front", "plot_all", "print_table", "render_markdown", "validate", "write_report"]
