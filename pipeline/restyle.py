"""One frame through the face stages: track → align → stylize → restore detail → composite.

This is where the per-frame stages are wired, once; the threaded runner, the Python API and
the benchmark call :meth:`Restyler.process`, the live path its two halves
(:meth:`Restyler.analyse`, :meth:`Restyler.render`) on two threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.align import align_face
from pipeline.composite import Compositor
from pipeline.detail import restore_detail
from pipeline.frame import AlignedCrop, Face, Frame
from pipeline.stylizer import Stylizer
from pipeline.timings import StageTimings
from pipeline.tracker import FaceTracker

__all__ = ["STAGES", "Analysis", "Restyler"]

# The stages in the order they run, as named in :attr:`Restyler.timings`.
STAGES = ("track", "align", "stylize", "detail", "composite")


@dataclass(frozen=True)
class Analysis:
    """One frame's visible faces, tracked and aligned, waiting to be stylized.

    Attributes:
        frame: the input frame.
        faces: the faces to restyle (visibility above 0).
        crops: ``crops[i]`` is ``faces[i]`` aligned to ``stylizer.crop_size``.
        stylizer: the stylizer the crops were aligned for (a style switch between the two
            halves of :meth:`Restyler.process` must not pair crops with the wrong size).
    """

    frame: Frame
    faces: tuple[Face, ...]
    crops: tuple[AlignedCrop, ...]
    stylizer: Stylizer


class Restyler:
    """Restyles every tracked face in a stream of frames.

    Args:
        stylizer: turns aligned crops into stylized crops.
        tracker: finds and follows faces; a default :class:`FaceTracker` if ``None``.
        compositor: blends stylized crops back; a default ``Compositor()`` (the head matte)
            if ``None``.
        identity: strength of the content's fine luminance detail added back after
            stylizing (0 = pure style, about 1 = clearly the person); see
            :func:`pipeline.detail.restore_detail`. ``None`` uses the stylizer's own
            ``default_identity`` (a style pack's measured default) if it has one, else 0;
            it follows the stylizer through a style switch.

    Attributes:
        timings: seconds spent per stage (:data:`STAGES`) and frames processed.
        track_ids: every track id that has been stylized in at least one frame.
    """

    def __init__(
        self,
        stylizer: Stylizer,
        tracker: FaceTracker | None = None,
        compositor: Compositor | None = None,
        identity: float | None = None,
    ) -> None:
        if identity is not None and identity < 0:
            raise ValueError(f"Restyler: identity must be >= 0, got {identity}")
        self.stylizer = stylizer
        self.tracker = tracker if tracker is not None else FaceTracker()
        self.compositor = compositor if compositor is not None else Compositor()
        self.identity = identity
        self.timings = StageTimings()
        self.track_ids: set[int] = set()

    def process(self, frame: Frame) -> Frame:
        """Restyle the faces in one frame.

        Returns:
            A frame with the same time, index and pts; the very same object when no face is
            visible, so faceless frames pass through bit for bit.
        """
        return self.render(self.analyse(frame))

    def analyse(self, frame: Frame) -> Analysis:
        """The first half of :meth:`process`: track and align (must see frames in order).

        The live runner calls :meth:`analyse` and :meth:`render` on two threads, so that
        one frame is stylized while the next is tracked.
        """
        timings = self.timings
        timings.frames += 1
        with timings.measure("track"):
            faces = [face for face in self.tracker.process(frame) if face.visibility > 0]
        stylizer = self.stylizer
        if not faces:
            return Analysis(frame, (), (), stylizer)
        with timings.measure("align"):
            crops = [align_face(frame.image, face, stylizer.crop_size) for face in faces]
        return Analysis(frame, tuple(faces), tuple(crops), stylizer)

    def render(self, analysis: Analysis) -> Frame:
        """The second half of :meth:`process`: stylize, restore detail, composite."""
        frame, faces, crops = analysis.frame, analysis.faces, analysis.crops
        if not faces:
            return frame
        timings = self.timings
        with timings.measure("stylize"):
            stylized = analysis.stylizer.stylize(crops)
        identity = self.identity_for(analysis.stylizer)
        if identity > 0:
            with timings.measure("detail"):
                content = np.stack([crop.image for crop in crops])
                stylized = restore_detail(stylized, content, identity)
        with timings.measure("composite"):
            image = self.compositor.process(frame.image, crops, stylized, faces)
        self.track_ids.update(face.track_id for face in faces)
        return frame.with_image(image)

    def identity_for(self, stylizer: Stylizer) -> float:
        """The identity strength used with ``stylizer`` (see the ``identity`` argument)."""
        if self.identity is not None:
            return self.identity
        return float(getattr(stylizer, "default_identity", 0.0))

    def reset(self) -> None:
        """Forget tracks, stylizer state and timings (call between unrelated clips)."""
        self.tracker.reset()
        self.stylizer.reset()
        self.compositor.reset()
        self.timings.reset()
        self.track_ids.clear()
