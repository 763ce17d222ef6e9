"""Progress bars for the long phases of a command (generation, metrics, plots)."""
from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


def progress_bar(progress: bool, **options: Any) -> tqdm:
    """A :class:`tqdm.tqdm` bar (``options`` as tqdm's) that shows only with ``progress`` and
    when stderr is a terminal, so logs and pipes stay clean; it goes away when done."""
    return tqdm(disable=None if progress else True, dynamic_ncols=True, leave=False, **options)
