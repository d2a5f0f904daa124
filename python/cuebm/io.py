"""safetensors files and training checkpoints."""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from . import _cuebm
from ._arrays import Array, prepare


def load_safetensors(path: Union[str, os.PathLike]) -> Dict[str, np.ndarray]:
    """(tensors, metadata): an ordered dict name -> float32/float64 NumPy array, and the
    file's metadata. Only F32 and F64 tensors are read (others raise cuebm.IoError)."""
    return _cuebm.read_safetensors(str(path))


def save_safetensors(path: Union[str, os.PathLike], tensors: Mapping[str, Array],
                     metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes name -> array (NumPy or torch, float32 or float64, kept as F32/F64) atomically,
    byte for byte as safetensors.torch.save_file."""
    items = [(str(k), prepare(v, str(k))[0]) for k, v in tensors.items()]
    _cuebm.write_safetensors(str(path), items, dict(metadata or {}))


def load_checkpoint(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """A training checkpoint (`cuebm train`, cuebm.train, ContrastiveDivergence) as a dict:
    model spec, parameters, Adam's state, counters, losses, config."""
    return _cuebm.read_checkpoint(str(path))


def save_checkpoint(path: Union[str, os.PathLike], loss_fn: Any, epoch: int = 0,
                    epoch_loss: Sequence[float] = (), config: Any = None) -> None:
    """Writes a checkpoint of a ContrastiveDivergence trainer's model and optimiser (a
    non-persistent run), readable by load_checkpoint and as a model file."""
    loss_fn.sync()
    opt = loss_fn.optimizer_state()
    _cuebm.write_checkpoint(str(path), loss_fn.energy_function._impl, opt["steps"], opt["m"],
                            opt["v"], loss_fn.iteration, epoch, list(epoch_loss),
                            dict(config or {}))
