"""What the pipeline knows of a stylizer: aligned crops in, stylized crops out.

The pipeline never imports ``models``; anything with this shape can stylize (the classical
cartoon filter in :mod:`pipeline.cartoon`, a one-shot style pack from ``models``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pipeline.frame import AlignedCrop

__all__ = ["ReshapingStylizer", "StagedStylizer", "Stylizer", "drawn_crops"]


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


@runtime_checkable
class StagedStylizer(Stylizer, Protocol):
    """A stylizer whose work the restyler spreads over its three threads.

    ``stylize(crops)`` is ``finish(paint(crops, prepare(crops)), crops)``. The restyler
    prepares on the analysing thread, paints on the stylizing one and finishes on the
    compositing one, so a frame's guides and flow are made while the frame before is painted.
    On 2 cores, three interleaved rounds against one stage: four faces at 720p 1.29x the
    frame rate, one face at 640x480 1.15x.
    """

    def prepare(self, crops: Sequence[AlignedCrop]) -> Sequence[Any]:
        """What painting needs from the input crops alone, one item per crop. Called once
        per frame, in frame order (a stylizer may keep each track's last crop)."""
        ...

    def paint(self, crops: Sequence[AlignedCrop], prepared: Sequence[Any]) -> Any:
        """``(N, S, S, 3)`` ``uint8`` RGB (see :meth:`Stylizer.stylize`) before
        :meth:`finish`, from ``prepare``'s items for these crops. Called in frame order, once
        per crop side where a frame's crops differ (a crowd's small faces at half)."""
        ...

    def finish(self, painted: Any, crops: Sequence[AlignedCrop]) -> Any:
        """:meth:`paint`'s crops made final, from this frame alone (any thread)."""
        ...


@runtime_checkable
class ReshapingStylizer(Stylizer, Protocol):
    """A stylizer that reshapes each face before it paints it (a style pack's geometry:
    eyes, jaw and brows moved toward the artwork's proportions), so its output lines up
    with the reshaped crop, not the one it was given. Whatever goes over that output (the
    person's detail, the finish, the head matte) must be taken from the reshaped crop."""

    def reshape(self, crops: Sequence[AlignedCrop]) -> list[AlignedCrop]:
        """``crops`` as this stylizer draws them: each image and its landmarks reshaped,
        its side, matrix, track and surround kept."""
        ...


def drawn_crops(stylizer: Stylizer, crops: Sequence[AlignedCrop]) -> list[AlignedCrop]:
    """The crops ``stylizer``'s output for ``crops`` lines up with: its own reshaped ones
    (:class:`ReshapingStylizer`), else ``crops`` themselves."""
    if isinstance(stylizer, ReshapingStylizer):
        return stylizer.reshape(crops)
    return list(crops)
