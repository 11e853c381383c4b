"""README's figures are rendered from the records they cite (benchmarks/readme_figures.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "benchmarks" / "readme_figures.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def test_readme_figures_match_their_records():
    m = _module()
    text = (ROOT / "README.md").read_text()
    assert m.render(text) == text, "README's figures differ from their records: run python benchmarks/readme_figures.py"


def test_a_changed_figure_is_caught():
    m = _module()
    text = (ROOT / "README.md").read_text()
    tampered = text.replace("| resnet8_kd_eurosat64-fp32 | ", "| resnet8_kd_eurosat64-fp32 | 9", 1)
    assert tampered != text and m.render(tampered) == text
