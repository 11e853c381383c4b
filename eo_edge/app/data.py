"""``eo-edge data prepare`` and ``eo-edge data download`` as use cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..defaults import check_image_size
from ..errors import EOEdgeError


def prepare_dataset(source: Path, *, out_dir: Path | None = None, name: str | None = None, home: Path | None = None,
                    size: int | None = None, bands: str | None = None, sha256: str | None = None,
                    replace: bool = False, split_files: list[Path] | None = None, quiet: bool = False,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """Decode every image of ``source`` once into a cache (``out_dir``, default ``HOME/datasets/NAME``).

    Returns:
        The cache manifest without its name list, plus ``cache`` (folder) and ``splits``
        (``{"train": n, "val": n, "test": n}`` images; 0 for an empty split).

    Raises:
        EOEdgeError: a bad name or size, a missing source, or what :func:`eo_edge.data.prepare.prepare` refuses.
    """
    from ..data.dataset import load_prepared
    from ..data.prepare import prepare
    from ..data.resolve import dataset_name, report_issues, source_fingerprint
    from ..data.split import split_indices
    from ..home import home_dir

    check_image_size(size, "--size")
    if name is not None and (not name or "/" in name or name.startswith(".")):
        raise EOEdgeError(f"--name {name!r}: give a plain folder name")
    if not source.exists():
        raise EOEdgeError(f"data source not found: {source}")
    dest = out_dir or home_dir(home) / "datasets" / (name or dataset_name(source))
    m = prepare(source, dest, sha256=sha256, progress=not quiet, replace=replace, size=size,
                source_key=source_fingerprint(source), bands=bands, split_files=list(split_files or []) or None)
    report_issues(m, log, most=10**9)
    d = load_prepared(dest)

    def count(s: str) -> int:
        try:
            return int(len(split_indices(d, s)))
        except EOEdgeError:  # an empty split is reported as 0 here; commands that need it say so
            return 0

    res = {k: v for k, v in m.items() if k != "names"}
    res.update({"cache": str(dest), "splits": {s: count(s) for s in ("train", "val", "test")}})
    return res


def download_eurosat(dest: Path, url: str | None = None, sha256: str | None = None, quiet: bool = False) -> Path:
    """Download the official EuroSAT RGB archive (or ``url``) to ``dest``, resumable, sha256-checked
    (the known EuroSAT digest unless another ``url`` is given without ``sha256``)."""
    from ..data.dataset import EUROSAT_SHA256
    from ..data.download import EUROSAT_URL, download

    return download(url or EUROSAT_URL, dest, sha256 or (EUROSAT_SHA256 if url is None else None), progress=not quiet)


def resolve(data: Path | None, home: Path | None, quiet: bool, log: Callable[[str], None], dataset: str | None = None):
    """The dataset of ``--data`` (:func:`eo_edge.data.resolve.resolve_data`); with no ``--data``, the
    cache named ``dataset`` (a model's own data; default eurosat)."""
    from ..data.resolve import resolve_data

    return resolve_data(data, home, not quiet, log, dataset=dataset)
