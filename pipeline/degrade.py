"""Live restyling that gives way gracefully when the machine cannot keep up.

A live session must keep pace with its camera. When the face work of a frame takes longer
than the camera's frame interval, the runner's newest-frame queues drop frames — visible as
stutter. Before that, :class:`DegradePolicy` sheds work in steps, each one cheaper and each one
less visible than a dropped frame, and steps back up when there is room again:

====  =========================  =============================================================
step  name                       what changes
====  =========================  =============================================================
0     ``full``                   every face, every frame, full-size crops
1     ``smaller crops``          crops are aligned and stylized at half the side (a quarter of
                                 the student's work; the style's marks come out coarser)
2     ``far faces classical``    faces much smaller than the frame's largest use the classical
                                 filter (a few ms) instead of the style pack
3     ``alternate frames``       a face that barely moved is stylized every other frame; in
                                 between, its last stylized crop is blended at its new place
4     ``groups classical``       with two faces or more, every face uses the classical filter
                                 (the style pack's student is most of what a face costs); a
                                 lone face keeps the style
====  =========================  =============================================================

Each step includes the ones before it. The policy only decides; :class:`pipeline.restyle.
Restyler` applies the step, and the live status line names it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["STEPS", "DegradePolicy", "DegradeSettings", "sheds"]

STEPS = (
    "full",
    "smaller crops",
    "far faces classical",
    "alternate frames",
    "groups classical",
)


def sheds(step: int, work: str) -> bool:
    """Whether ``step`` (an index into :data:`STEPS`) includes the step named ``work``: each
    step includes the ones before it."""
    return step >= STEPS.index(work)


@dataclass(frozen=True)
class DegradeSettings:
    """When :class:`DegradePolicy` steps down (less work) and back up.

    Attributes:
        budget_ms: the time a frame may take: the camera's frame interval (33.3 ms at 30 fps).
        step_down_above: step down when the second-slowest of the last ``window`` frames
            took more than this fraction of the budget (so two slow frames, not one).
        step_up_below: step back up when it took less than this fraction (well below: a step
            roughly halves or quarters some of the work, so the hysteresis keeps the policy
            from see-sawing between two steps).
        window: frames looked at, and frames made at a new step before it may step back up.
        step_down_after: frames made at a new step before it may step further down (two
            slow ones among them suffice): latency piles up while the machine is behind, so
            going down is quicker than coming back.
        far_face: at ``far faces classical``, a face whose box side is below this fraction
            of the largest face's side in the frame is "far".
        slow_face: at ``alternate frames``, a face whose box centre moved less than this
            fraction of its side since the last frame is "slow".
    """

    budget_ms: float = 1000 / 30
    step_down_above: float = 0.9
    step_up_below: float = 0.4
    window: int = 10
    step_down_after: int = 3
    far_face: float = 0.6
    slow_face: float = 0.05

    def __post_init__(self) -> None:
        if not self.budget_ms > 0:
            raise ValueError(f"DegradeSettings.budget_ms: expected > 0, got {self.budget_ms}")
        if not 0 < self.step_up_below < self.step_down_above:
            raise ValueError(
                "DegradeSettings: expected 0 < step_up_below < step_down_above, got "
                f"{self.step_up_below} and {self.step_down_above}"
            )
        if self.window < 1:
            raise ValueError(f"DegradeSettings.window: expected >= 1, got {self.window}")
        if not 2 <= self.step_down_after <= self.window:
            raise ValueError(
                f"DegradeSettings.step_down_after: expected 2..window, got {self.step_down_after}"
            )


class DegradePolicy:
    """Chooses the step (:data:`STEPS`) from how long recent frames took.

    Args:
        settings: thresholds; defaults for a 30 fps camera.

    Attributes:
        step: the current step, an index into :data:`STEPS`.
    """

    def __init__(self, settings: DegradeSettings | None = None) -> None:
        self.settings = settings or DegradeSettings()
        self.reset()

    def update(self, frame_ms: float, step: int) -> int:
        """Record how long a frame's face work took (its slowest stage, in ms) and return the
        step for the next frames.

        ``step`` is the step the frame was made at: frames still in flight when the step
        changed were made at the old one and are not counted, so that only the new step's
        own timings decide (counted, two of them could step down again at once).
        """
        settings = self.settings
        if step != self.step:
            return self.step
        self._recent.append(frame_ms)
        self._since_change += 1
        if self._since_change < settings.step_down_after:
            return self.step
        # The second-slowest frame, not the mean: latency is made by the slow frames (each one
        # holds up those behind it), and one alone (a detection landing) is not yet a trend.
        # Live at 640x480 beside a PyTorch job, seven interleaved pairs against the mean:
        # p95 latency 62-94 ms (median 72) against 75-107 ms (median 87), p50 34-43 ms
        # against 42-50 ms; quiet, both stayed at full work.
        level = sorted(self._recent)[-2] if len(self._recent) > 1 else self._recent[0]
        if level > settings.step_down_above * settings.budget_ms and self.step < len(STEPS) - 1:
            self._change(self.step + 1)
        elif (
            self._since_change >= settings.window
            and level < settings.step_up_below * settings.budget_ms
            and self.step > 0
        ):
            self._change(self.step - 1)
        return self.step

    @property
    def name(self) -> str:
        """The current step's name, e.g. ``"smaller crops"``."""
        return STEPS[self.step]

    def reset(self) -> None:
        """Back to ``full`` with no history."""
        self.step = 0
        self._recent: deque[float] = deque(maxlen=self.settings.window)
        self._since_change = 0

    def _change(self, step: int) -> None:
        self.step = step
        self._recent.clear()
        self._since_change = 0
