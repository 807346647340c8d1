"""Small helpers for the notebooks' narrative cells."""
from __future__ import annotations

import inspect
from typing import Any

__all__ = ["show_source", "compare_table"]


def show_source(*objs: Any) -> Any:
    """Display the library's real source of functions/classes (not a second copy) as Markdown."""
    from IPython.display import Markdown

    parts = [f"`{inspect.getsourcefile(o).split('sparsenb/')[-1]}`\n```python\n{inspect.getsource(o)}```"
             for o in objs]
    return Markdown("\n\n".join(parts))


def compare_table(rows: list[dict]) -> Any:
    """A pandas DataFrame of ``{"setting", "ours", "paper"}`` rows for the final comparison cell."""
    import pandas as pd

    return pd.DataFrame(rows).set_index(rows and list(rows[0])[0] or None)
