"""What the pipeline knows of a stylizer: aligned crops in, stylized crops out.

The pipeline never imports ``models``; anything with this shape can stylize (the classical
cartoon filter in :mod:`pipeline.cartoon`, a one-shot style pack from ``models``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pipeline.frame import AlignedCrop

__all__ = ["Stylizer"]


@runtime_checkable
class Stylizer(Protocol):
    """Turns aligned face crops into stylized crops of the same size.

    Attributes:
        name: a short human name for summaries and ``facestyle packs``.
        crop_size: side ``S`` of the square crops it expects.
        default_identity: the identity strength (:func:`pipeline.detail.restore_detail`)
            to use with it when the user gives none: a style pack's measured default, 0 for
            a stylizer that keeps the person by itself.
        identity_scale: the blur (pixels of a 256 px crop) below which the content's
            luminance is the person's detail that identity restores
            (:data:`pipeline.detail.DEFAULT_IDENTITY_SCALE` for fine detail only).
    """

    name: str
    crop_size: int
    default_identity: float
    identity_scale: float

    def stylize(self, crops: Sequence[AlignedCrop]) -> Any:
        """Stylize a batch of crops.

        Args:
            crops: ``N`` crops, each ``(S, S, 3)`` ``uint8`` RGB with its landmarks.

        Returns:
            ``(N, S, S, 3)`` ``uint8`` RGB, stylized crop ``i`` for ``crops[i]``: a NumPy
            array, or a CuPy array from a stylizer that runs on the GPU (the compositor
            blends it there, with no copy to the host).
        """
        ...

    def reset(self) -> None:
        """Forget any per-track state (call between unrelated clips)."""
        ...
