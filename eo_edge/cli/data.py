"""`eo-edge data prepare` and `eo-edge data download`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..fileio import write_json
from .options import HomeOpt, JsonOpt, QuietOpt
from .root import _log, data_app, out


@data_app.command("prepare")
def data_prepare(
    source: Path = typer.Option(..., "--source", metavar="PATH", help="EuroSAT.zip (official layout "
                                "2750/<Class>/*.jpg), a folder of class sub-folders, or a root with train/, optional "
                                "val/, and test/ class folders."),
    name: Optional[str] = typer.Option(None, "--name", metavar="NAME", help="Cache name under HOME/datasets (default: "
                                       "eurosat for EuroSAT.zip, else the source's own name)."),
    size: Optional[int] = typer.Option(None, "--size", metavar="PX", help="Resize every image to PX x PX pixels "
                                       "(default: keep their own size, which must then be equal)."),
    bands: Optional[str] = typer.Option(None, "--bands", metavar="BANDS", help="Keep these bands, in order: names "
                                        "(B04,B03,B02 for Sentinel-2) or 1-based numbers (default: all; GeoTIFFs keep "
                                        "every band)."),
    split_file: Optional[List[Path]] = typer.Option(None, "--split-file", metavar="FILE", help="Your split: a CSV with "
                                                    "path and split columns, or torchgeo-style lists (repeat: "
                                                    "x-train.txt, x-val.txt, x-test.txt)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Cache folder (default: "
                                           "HOME/datasets/NAME)."),
    sha256: Optional[str] = typer.Option(None, "--sha256", metavar="HEX", help="Expected sha256 of the archive "
                                         "(default: the known EuroSAT one)."),
    replace: bool = typer.Option(False, "--replace", help="Replace a cache prepared from another source."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Decode every image once (RGB uint8 at its own size) and cache it for training and evaluation.

    Corrupt files are listed and skipped; converted images (mode, size) are reported. A root with train/ and test/ folders (my_scenes/train/<Class>/*.png, my_scenes/test/<Class>/*.png) keeps its own split; val is carved from train when there is no val/.

    Examples:
    eo-edge data prepare --source ../shared/data/EuroSAT.zip
    eo-edge data prepare --source my_scenes/ --name scenes256
    """
    from ..app.data import prepare_dataset

    res = prepare_dataset(source, out_dir=out_dir, name=name, home=home, size=size, bands=bands, sha256=sha256,
                          replace=replace, split_files=list(split_file or []) or None, quiet=quiet, log=_log)
    sz = res["splits"]
    out.print(f"prepared {res['n_images']} images in {len(res['class_names'])} classes -> {res['cache']}  "
              f"(train {sz['train']}, val {sz['val']}, test {sz['test']}; skipped {len(res['skipped'])})")
    if json_out:
        write_json(json_out, res)


@data_app.command("download")
def data_download(
    dest: Path = typer.Option(Path("EuroSAT.zip"), "--dest", metavar="FILE", help="Where to save the archive."),
    url: Optional[str] = typer.Option(None, "--url", metavar="URL", help="Archive URL (default: the official EuroSAT "
                                      "RGB archive)."),
    sha256: Optional[str] = typer.Option(None, "--sha256", metavar="HEX", help="Expected sha256 (default: the known "
                                         "EuroSAT one)."),
    quiet: bool = QuietOpt,
):
    """Download the official EuroSAT RGB archive (resumable, checksum-verified).

    Example (then prepare it):
    eo-edge data download --dest EuroSAT.zip
    eo-edge data prepare --source EuroSAT.zip
    """
    from ..app.data import download_eurosat

    out.print(f"downloaded {download_eurosat(dest, url, sha256, quiet)}")
