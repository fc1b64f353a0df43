"""Which array module runs the blend arithmetic: CuPy on a CUDA device, NumPy otherwise.

Code written against :class:`ArrayBackend` (``backend.xp`` for array math, ``backend.ndimage``
for resampling) runs unchanged on either. CuPy is an optional extra (``pip install
"facestyle[gpu]"``) and is imported only when asked for, so a CPU machine never pays for it.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np

from pipeline.errors import DeviceError

__all__ = ["ArrayBackend", "array_module", "cuda_available", "select_backend", "to_host"]

Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class ArrayBackend:
    """An array module and its matching ``ndimage`` module.

    Attributes:
        name: ``"numpy"`` or ``"cupy"``; any other name over ``numpy`` runs the GPU code path
            on the CPU (``ndimage`` warps instead of OpenCV), which is how it is tested.
        xp: ``numpy`` or ``cupy``.
        ndimage: ``scipy.ndimage`` or ``cupyx.scipy.ndimage`` (same API).
    """

    name: str
    xp: ModuleType
    ndimage: ModuleType

    def to_device(self, array: np.ndarray) -> Any:
        """A NumPy array as this backend's array (a copy to the GPU for CuPy)."""
        return self.xp.asarray(array)

    def to_numpy(self, array: Any) -> np.ndarray:
        """This backend's array as a NumPy array (a copy from the GPU for CuPy)."""
        return to_host(array)


def to_host(array: Any) -> np.ndarray:
    """A NumPy or CuPy array as a NumPy array (a copy from the GPU for CuPy)."""
    return array.get() if array_module(array) is not np else np.asarray(array)


def array_module(array: Any) -> ModuleType:
    """``cupy`` for a CuPy array, ``numpy`` for anything else (without importing CuPy)."""
    if type(array).__module__.startswith("cupy"):
        return importlib.import_module("cupy")
    return np


def cuda_available() -> bool:
    """Whether CuPy is installed and sees at least one CUDA device."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        # Installed but broken (a wheel for another CUDA version): treat as absent.
        return False
    try:
        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except cupy.cuda.runtime.CUDARuntimeError:
        # Raised when there is no driver or no device: the normal case on a CPU machine.
        return False


def select_backend(device: Device = "auto") -> ArrayBackend:
    """The array backend for ``device``.

    Args:
        device: ``"cpu"`` for NumPy; ``"cuda"`` for CuPy (raises when unusable); ``"auto"``
            for CuPy when :func:`cuda_available`, NumPy otherwise.

    Raises:
        DeviceError: ``device="cuda"`` without CuPy or without a CUDA device.
        ValueError: an unknown ``device``.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"select_backend: device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cpu" or (device == "auto" and not cuda_available()):
        import scipy.ndimage

        return ArrayBackend("numpy", np, scipy.ndimage)
    if importlib.util.find_spec("cupy") is None:
        raise DeviceError(
            "GPU compositing needs CuPy, which is not installed: "
            'pip install "facestyle[gpu]" (CUDA 12), or use the CPU'
        )
    if not cuda_available():
        raise DeviceError(
            "CuPy is installed but cannot use a CUDA device (no driver, no device, or a CuPy "
            "built for another CUDA version); check nvidia-smi, or use the CPU"
        )
    return ArrayBackend(
        "cupy", importlib.import_module("cupy"), importlib.import_module("cupyx.scipy.ndimage")
    )
