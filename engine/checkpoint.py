"""Checkpoints: written atomically, read with ``torch.load(..., weights_only=True)``."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from bayesgen.core.errors import RunError
from bayesgen.engine.io import AtomicFile

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_NAME


def save_checkpoint(run_dir: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``run_dir/checkpoint.pt`` atomically (see :class:`AtomicFile`)."""
    with AtomicFile(checkpoint_path(run_dir)) as temporary:
        torch.save({"format": FORMAT_VERSION, **state}, temporary)
    return checkpoint_path(run_dir)


def load_checkpoint(run_dir: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read the checkpoint of ``run_dir``; :class:`RunError` says what is wrong with it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run directory not found: {run_dir}")
    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise RunError(f"no checkpoint in run directory {run_dir} (expected {path.name}); "
                       "train into it first with `bayesgen train --out`")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        raise RunError(f"checkpoint {path} is corrupted or unreadable ({type(error).__name__}: "
                       f"{str(error).splitlines()[0] if str(error) else 'no details'})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise RunError(f"checkpoint {path} is not a bayesgen checkpoint of format {FORMAT_VERSION}")
    return state
