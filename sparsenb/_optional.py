"""Optional dependencies: import one, or say which extra installs it."""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``; if it is missing, raise an ImportError that names the extra to install.

    Args:
        module: dotted module name, e.g. ``"torch_geometric.nn"``.
        extra: the sparsenb extra that installs it (``"gnn"``, ``"timeseries"``, ``"notebooks"``).
        what: what needs it, for the message (e.g. ``"the GCN/GAT/GIN models"``).
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        top = module.split(".")[0]
        if err.name is not None and err.name.split(".")[0] != top:
            raise
        raise ImportError(f"{what} needs the optional package {top!r}, which is not installed. "
                          f"To fix: pip install 'sparsenb[{extra}]' (or pip install -e '.[{extra}]' "
                          f"in a source checkout).") from err
