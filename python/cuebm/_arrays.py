"""Inputs and outputs of the bindings: NumPy arrays in and out, torch tensors in and out.

The C++ side reads any DLPack / buffer-protocol array: a C-contiguous float32 CPU array is read
in place, float64 and strided arrays are converted into a float32 copy, and any other dtype is a
TypeError naming it. Here, torch tensors are detached (DLPack refuses tensors that require
grad), and results come back as torch tensors when the input was one (torch.from_numpy: no copy).
"""

from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:
    import torch

# What the functions take and give back for arrays: a NumPy array or a torch tensor (results
# come back in the input's kind).
Array = Union[np.ndarray, "torch.Tensor"]


def is_torch(x):
    """True for a torch.Tensor, without importing torch."""
    return type(x).__module__ == "torch" and hasattr(x, "detach")


def _dtype_error(name, dtype_name):
    return TypeError(f"{name} must be float32 or float64, got {dtype_name}")


def prepare(x, name="x"):
    """(what the C++ call reads, the tensor whose kind the result takes or None)."""
    if isinstance(x, np.ndarray):
        if x.dtype != np.float32 and x.dtype != np.float64:
            raise _dtype_error(name, x.dtype.name)
        return x, None
    if is_torch(x):
        import torch

        if x.dtype != torch.float32 and x.dtype != torch.float64:
            raise _dtype_error(name, str(x.dtype).replace("torch.", ""))
        if x.device.type != "cpu":
            raise ValueError(
                f"{name} is a {x.device} tensor: this call reads CPU memory "
                "(cuebm.torch runs MLP energies and Langevin on CUDA tensors)"
            )
        return x.detach(), x
    if isinstance(x, (list, tuple, float, int)):
        return np.asarray(x, dtype=np.float32), None
    return x, None


def wrap(array, like):
    """array (a NumPy result) as a torch tensor when `like` is one."""
    if like is None:
        return array
    import torch

    return torch.from_numpy(array)


def to_numpy(x):
    """A NumPy view (or copy) of x: a torch tensor, a NumPy array or a sequence."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)
