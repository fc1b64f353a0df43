"""Live restyling degrades in steps when frames take too long, and recovers: the policy fed
with timings, and each step applied by the Restyler to real crops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.pack_stylizer import PackStylizer
from pipeline.align import align_face
from pipeline.cartoon import CartoonStylizer
from pipeline.degrade import STEPS, DegradePolicy, DegradeSettings
from pipeline.errors import StyleError
from pipeline.frame import Face, Frame
from pipeline.restyle import Analysis, Restyler
from tests.face_crops import photo_face
from tests.pack_factory import make_pack

BUDGET = 40.0
SETTINGS = DegradeSettings(budget_ms=BUDGET, step_down_above=0.9, step_up_below=0.4, window=5)


def _feed(policy: DegradePolicy, ms: float, frames: int) -> list[int]:
    """``frames`` frames that took ``ms`` each, made at the policy's step of the moment."""
    return [policy.update(ms, policy.step) for _ in range(frames)]


def test_slow_frames_step_down_every_few_frames_until_the_last() -> None:
    policy = DegradePolicy(SETTINGS)
    steps = _feed(policy, 1.5 * BUDGET, 20)
    # Two slow frames at a step (of its first three) are enough to go down again.
    assert steps == [0] * 2 + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 9
    assert policy.step == len(STEPS) - 1 and policy.name == "groups classical"


def test_frames_made_before_a_step_down_do_not_count_against_the_new_step() -> None:
    policy = DegradePolicy(SETTINGS)
    _feed(policy, 2 * BUDGET, 3)
    assert policy.step == 1
    # Two slow frames still in flight from step 0, then the new step keeping up.
    assert [policy.update(3 * BUDGET, 0) for _ in range(2)] == [1, 1]
    assert _feed(policy, 0.6 * BUDGET, 5) == [1] * 5


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (0.95 * BUDGET, 2),  # still too slow: one more step down
        (0.6 * BUDGET, 1),  # keeping up, without room to spare: stays
        (0.3 * BUDGET, 0),  # room again: one step back up
    ],
)
def test_the_policy_holds_between_its_two_thresholds(ms: float, expected: int) -> None:
    policy = DegradePolicy(SETTINGS)
    _feed(policy, 2 * BUDGET, 3)
    assert policy.step == 1
    # Going back up waits a whole window at the new step.
    _feed(policy, ms, 4)
    assert policy.step == max(expected, 1)
    _feed(policy, ms, 1)
    assert policy.step == expected


def test_one_slow_frame_is_not_a_trend_two_are_and_reset_restores_the_full_work() -> None:
    policy = DegradePolicy(SETTINGS)
    # One frame five times over budget (a mean would step down on it) ...
    assert _feed(policy, 0.2 * BUDGET, 4) + _feed(policy, 5 * BUDGET, 1) == [0] * 5
    # ... but two just over it (their mean with the fast ones is well under) are a trend.
    policy.reset()
    assert _feed(policy, 0.2 * BUDGET, 3) + _feed(policy, BUDGET, 2) == [0] * 4 + [1]
    policy.reset()
    _feed(policy, 3 * BUDGET, 6)
    assert policy.step == 2
    policy.reset()
    assert policy.step == 0 and policy.name == "full"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("budget_ms", 0.0, "budget_ms: expected > 0"),
        ("step_up_below", 0.95, "step_up_below < step_down_above"),
        ("window", 0, "window: expected >= 1"),
        ("step_down_after", 1, "step_down_after: expected 2..window"),
    ],
)
def test_bad_settings_are_refused(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SETTINGS, **{field: value})


def _analysis(
    stylizer, step: int, index: int = 0, shift: float = 0.0, small: bool = False, dark=False
):
    """Two faces of the astronaut photo (the second drawn smaller when ``small``; the photo
    darkened when ``dark``)."""
    photo, face, _ = photo_face("astronaut")
    photo = photo // 2 if dark else photo
    size = stylizer.crop_size // 2 if step >= 1 else stylizer.crop_size
    near = Face(0, face.box + np.float32(shift), face.landmarks + np.float32(shift))
    box = face.box * 0.5 if small else face.box
    far = Face(1, box, face.landmarks * (0.5 if small else 1.0))
    faces = (near, far)
    crops = tuple(align_face(photo, f, size) for f in faces)
    for crop in crops:
        assert crop.size == size
    return Analysis(Frame(photo, index / 30, index), faces, crops, stylizer, step)


@pytest.mark.parametrize("make", [lambda: PackStylizer(make_pack()), CartoonStylizer])
def test_smaller_crops_stylize_at_half_the_side(make) -> None:
    stylizer = make()
    restyler = Restyler(stylizer, degrade=DegradePolicy(SETTINGS))
    analysis = _analysis(stylizer, step=1)
    half = stylizer.crop_size // 2
    assert [crop.shape for crop in restyler.stylize(analysis).crops] == [(half, half, 3)] * 2
    assert restyler.render(analysis).image.shape == analysis.frame.image.shape


def test_a_pack_prepares_a_frame_of_two_sides_and_paints_one_side_at_a_time() -> None:
    # A crowd's small faces at half the side beside a large one (Restyler's half crops).
    stylizer = PackStylizer(make_pack())
    photo, face, _ = photo_face("astronaut")
    full = stylizer.crop_size
    small = Face(1, face.box * 0.5, face.landmarks * 0.5)
    crops = [align_face(photo, face, full), align_face(photo, small, full // 2)]
    prepared = stylizer.prepare(crops)
    with pytest.raises(StyleError, match="share a side"):
        stylizer.paint(crops, prepared)
    for crop, item in zip(crops, prepared, strict=True):
        (painted,) = stylizer.paint([crop], [item])
        assert painted.shape == (crop.size, crop.size, 3)


@pytest.mark.parametrize("prepared", [False, True])
def test_far_faces_get_the_classical_style_and_near_ones_the_pack(prepared: bool) -> None:
    # Prepared (as the restyler's analysis does), the pack's faces are finished with the
    # composite, after the person's detail; not prepared, at once. Either way the classical
    # ones must not get the pack's finishing.
    pack = dataclasses.replace(make_pack(), keep_tone=True)
    stylizer = PackStylizer(pack, smoothing=0.0)
    restyler = Restyler(stylizer, identity=0.0)
    analysis = _analysis(stylizer, step=2, small=True)
    if prepared:
        analysis = dataclasses.replace(analysis, prepared=tuple(stylizer.prepare(analysis.crops)))
    stylized = restyler.stylize(analysis)
    assert stylized.unfinished == (prepared, False)
    styled = restyler.finish(stylized)
    near, far = analysis.crops
    by_pack = PackStylizer(pack, smoothing=0.0).stylize([near])[0]
    by_cartoon = CartoonStylizer(pack.crop_size).stylize([far])[0]
    np.testing.assert_array_equal(styled[0], by_pack)
    np.testing.assert_array_equal(styled[1], by_cartoon)


def test_groups_classical_gives_a_group_the_classical_style_and_a_lone_face_its_own() -> None:
    pack = make_pack()
    stylizer = PackStylizer(pack, smoothing=0.0)
    analysis = _analysis(stylizer, step=STEPS.index("groups classical"), small=True)
    cartoon = CartoonStylizer(pack.crop_size)
    styled = Restyler(stylizer).stylize(analysis).crops
    for i, crop in enumerate(analysis.crops):
        np.testing.assert_array_equal(styled[i], cartoon.stylize([crop])[0])
    lone = dataclasses.replace(analysis, faces=analysis.faces[:1], crops=analysis.crops[:1])
    styled = Restyler(stylizer).stylize(lone).crops
    own = PackStylizer(pack, smoothing=0.0).stylize(lone.crops)
    np.testing.assert_array_equal(styled, own)


def test_alternate_frames_reuse_a_still_faces_last_crop_every_other_frame() -> None:
    restyler = Restyler(CartoonStylizer())
    first = restyler.stylize(_analysis(restyler.stylizer, step=3, index=0)).crops
    # The next frame to arrive, darker: face 0 moved by a fifth of its side and is stylized
    # anew; face 1 did not move, and its last crop is reused as it was.
    second = restyler.stylize(_analysis(restyler.stylizer, 3, index=2, shift=20.0, dark=True)).crops
    np.testing.assert_array_equal(second[1], first[1])
    assert np.abs(second[0].astype(int) - first[0]).mean() > 20
    # The one after (frames dropped between them do not matter): a reused crop is not reused
    # twice, so the darker input shows in face 1 now; face 0, stylized last time and now
    # still, is the one reused.
    third = restyler.stylize(_analysis(restyler.stylizer, 3, index=6, shift=20.0, dark=True)).crops
    assert np.abs(third[1].astype(int) - first[1]).mean() > 20
    np.testing.assert_array_equal(third[0], second[0])
