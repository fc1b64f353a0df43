"""One frame through the face stages: track → align → stylize → restore detail → composite.

This is where the per-frame stages are wired, once; the threaded runner, the Python API, the
live path and the benchmark all call :meth:`Restyler.process`.
"""

from __future__ import annotations

import numpy as np

from pipeline.align import align_face
from pipeline.composite import Compositor
from pipeline.detail import restore_detail
from pipeline.frame import Frame
from pipeline.stylizer import Stylizer
from pipeline.timings import StageTimings
from pipeline.tracker import FaceTracker

__all__ = ["STAGES", "Restyler"]

# The stages in the order they run, as named in :attr:`Restyler.timings`.
STAGES = ("track", "align", "stylize", "detail", "composite")


class Restyler:
    """Restyles every tracked face in a stream of frames.

    Args:
        stylizer: turns aligned crops into stylized crops.
        tracker: finds and follows faces; a default :class:`FaceTracker` if ``None``.
        compositor: blends stylized crops back; a default ``Compositor(mode="face")`` if
            ``None``.
        identity: strength of the content's fine luminance detail added back after
            stylizing (0 = pure style, about 1 = clearly the person); see
            :func:`pipeline.detail.restore_detail`.

    Attributes:
        timings: seconds spent per stage (:data:`STAGES`) and frames processed.
        track_ids: every track id that has been stylized in at least one frame.
    """

    def __init__(
        self,
        stylizer: Stylizer,
        tracker: FaceTracker | None = None,
        compositor: Compositor | None = None,
        identity: float = 0.0,
    ) -> None:
        if identity < 0:
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
        timings = self.timings
        timings.frames += 1
        with timings.measure("track"):
            faces = [face for face in self.tracker.process(frame) if face.visibility > 0]
        if not faces:
            return frame
        size = self.stylizer.crop_size
        with timings.measure("align"):
            crops = [align_face(frame.image, face, size) for face in faces]
        with timings.measure("stylize"):
            stylized = self.stylizer.stylize(crops)
        if self.identity > 0:
            with timings.measure("detail"):
                content = np.stack([crop.image for crop in crops])
                stylized = restore_detail(stylized, content, self.identity)
        with timings.measure("composite"):
            image = self.compositor.process(frame.image, crops, stylized, faces)
        self.track_ids.update(face.track_id for face in faces)
        return frame.with_image(image)

    def reset(self) -> None:
        """Forget tracks, stylizer state and timings (call between unrelated clips)."""
        self.tracker.reset()
        self.stylizer.reset()
        self.timings.reset()
        self.track_ids.clear()
