"""`eo-edge models`: the model registry."""

from __future__ import annotations

from .root import app, out


@app.command("models")
def models_cmd():
    """List the registered architectures with their role (student, baseline or teacher) and default input size.

    Example: eo-edge models
    """
    from rich.table import Table

    from ..models.registry import REGISTRY, display_role

    t = Table(title="eo-edge model registry")
    for c in ("name", "role", "input px", "mean", "std"):
        t.add_column(c)
    for name, e in REGISTRY.items():
        cfg = e.config
        t.add_row(name, display_role(name), str(cfg.input_size), str(tuple(round(v, 3) for v in cfg.mean)),
                  str(tuple(round(v, 3) for v in cfg.std)))
    out.print(t)
