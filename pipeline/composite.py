"""Put stylized face crops back into the frame: inverse warp, soft mask, weighted blend.

The mask is, by default, a matte of the whole head, hair included (:mod:`pipeline.matte`);
``face`` blends inside the landmarks' face outline only, ``crop`` the whole aligned square.

Conventions: an :class:`~pipeline.frame.AlignedCrop`'s ``matrix`` maps frame pixels to crop
pixels. Warping a crop back into the frame therefore uses that matrix as it is, as the
*inverse map* of the warp (for each frame pixel, where in the crop to read); only the
bounding rectangle is found through the inverse. The mask is drawn in crop pixels, so its
feather is the same fraction of the face at every distance from the camera, and it travels
through the same warp as the colours.

A face larger in the frame than its crop (a 256 px crop of a head 600 px tall is magnified
2.3 times on the way back) would come out as soft as the crop's resolution; the frame's own
detail finer than the crop is put back on it (:func:`fine_detail_gain`,
:func:`add_fine_detail`) in the measure the stylized crop carries the photo's detail there.

Only the face's bounding region of the frame is touched; every pixel outside the warped
mask keeps its exact input value. The blend is written once against an array module
(:mod:`pipeline.xp`): NumPy here, CuPy on a CUDA machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import cv2
import numpy as np

from pipeline.align import invert_affine, similarity_scale, transform_points
from pipeline.frame import BROWS, CHIN, JAW, AlignedCrop, Face
from pipeline.guides import LUMA_WEIGHTS
from pipeline.matte import HeadMatte, behind_the_edge
from pipeline.neck import FacePalette, NeckStrip, face_palette, neck_opacity, neck_strip, recolour
from pipeline.xp import ArrayBackend, Device, select_backend

__all__ = [
    "FINE_DETAIL_FROM",
    "MODES",
    "Compositor",
    "add_fine_detail",
    "blend",
    "crop_mask",
    "face_mask",
    "fine_detail_gain",
    "magnification",
    "place_crop",
    "warp_crop_ndimage",
    "warp_crop_opencv",
]

# How far (mean over RGB, grey levels) the style must move a pixel's colour from the photo's
# for the head's edge there to be laid over the background alone (Compositor.over_background).
_CHANGED_FULLY = 16.0
_CHANNEL_MEAN = np.full((1, 3), 1.0 / 3.0, np.float32)

Mode = Literal["head", "face", "crop"]
MODES: tuple[Mode, ...] = ("head", "face", "crop")


def _feather(solid: np.ndarray, width: int) -> np.ndarray:
    """Shrink a 0/255 mask by ``width`` px, then soften its edge over the same ``width``.

    The blur's kernel is a square cut at ``width`` px and the erosion uses the same square,
    so the soft edge never reaches past the original mask: pixels outside it stay exactly 0.
    """
    # Zeroing the border first makes the crop's own edge feather like any other edge.
    solid[0, :] = solid[-1, :] = solid[:, 0] = solid[:, -1] = 0
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * width + 1, 2 * width + 1))
    shrunk = cv2.erode(solid, kernel)
    return cv2.GaussianBlur(shrunk, (2 * width + 1, 2 * width + 1), width / 2)


def face_mask(landmarks: np.ndarray, size: int, feather: float, forehead: float) -> np.ndarray:
    """Feathered mask of the face in crop pixels.

    The outline is the convex hull of the jaw line and the eyebrows, plus the eyebrows
    raised toward the hairline (landmarks stop at the brows, a cartoon should not).

    Args:
        landmarks: ``(68, 2)`` ``float32`` ``x, y`` in crop pixels, iBUG-300W order.
        size: crop side ``S``.
        feather: width of the soft edge as a fraction of ``S``.
        forehead: how far the brows are raised, as a fraction of the brow-to-chin distance.

    Returns:
        ``(S, S)`` ``uint8``, 255 inside the face, 0 outside, a soft ramp between.
    """
    points = np.asarray(landmarks, np.float64)
    brows = points[BROWS]
    up = brows.mean(axis=0) - points[CHIN]
    raised = brows + forehead * up
    outline = cv2.convexHull(np.concatenate([points[JAW], brows, raised]).astype(np.float32))
    solid = np.zeros((size, size), np.uint8)
    # Anti-aliased, with 4 fractional bits: the outline follows sub-pixel landmark motion
    # instead of jumping a whole pixel at a time (a shaking mask edge is plain to see).
    cv2.fillConvexPoly(solid, np.rint(outline * 16).astype(np.int32), 255, cv2.LINE_AA, 4)
    return _feather(solid, max(1, round(feather * size)))


def crop_mask(size: int, feather: float) -> np.ndarray:
    """Feathered mask of the whole crop: ``(S, S)`` ``uint8``, 255 inside, 0 at the border."""
    return _feather(np.full((size, size), 255, np.uint8), max(1, round(feather * size)))


def _region_matrix(matrix: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """The frame -> crop matrix re-based so region pixel ``(0, 0)`` is frame ``(x0, y0)``."""
    shifted = np.asarray(matrix, np.float64).copy()
    shifted[:, 2] += shifted[:, :2] @ np.array(region[:2], np.float64)
    return shifted


# CuPy compiles an ndimage kernel for every output shape it is asked for (the shape is part of
# the generated code), and a face's region changes size every frame: on an H200 that cost 110-500
# ms a frame in compiles. Warping into a rectangle rounded up to this step, then cutting it,
# keeps the shapes to a handful that are compiled once.
_SHAPE_STEP = 64


def warp_crop_opencv(
    rgba: np.ndarray, matrix: np.ndarray, region: tuple[int, int, int, int]
) -> np.ndarray:
    """Warp a crop (colour + mask) into a rectangle of the frame, on the CPU.

    Args:
        rgba: ``(S, S, 4)`` ``uint8`` RGB + mask (or any four crop-sized ``uint8`` layers).
        matrix: ``(2, 3)`` ``float64`` frame -> crop affine, as in ``AlignedCrop.matrix``.
        region: ``x0, y0, width, height`` of the frame rectangle to fill.

    Returns:
        ``(height, width, 4)`` ``uint8``; 0 where the rectangle reads outside the crop.
    """
    return cv2.warpAffine(
        rgba,
        _region_matrix(matrix, region),
        region[2:],
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def warp_crop_ndimage(
    backend: ArrayBackend, rgba: Any, matrix: np.ndarray, region: tuple[int, int, int, int]
) -> Any:
    """:func:`warp_crop_opencv` for any array backend, through ``ndimage.affine_transform``.

    The GPU path (``cupyx.scipy.ndimage``); on NumPy it runs with ``scipy.ndimage``, which
    is how the CPU tests check it against OpenCV.

    Args:
        backend: where ``rgba`` lives.
        rgba: ``(S, S, 4)`` ``uint8`` ``backend`` array, RGB + mask.
        matrix, region: as for :func:`warp_crop_opencv`.

    Returns:
        ``(height, width, 4)`` ``uint8`` ``backend`` array.
    """
    m = _region_matrix(matrix, region)
    # ndimage indexes (row, column, channel): swap x and y, keep the channel axis fixed.
    transform = np.array(
        [
            [m[1, 1], m[1, 0], 0.0, m[1, 2]],
            [m[0, 1], m[0, 0], 0.0, m[0, 2]],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    xp = backend.xp
    width, height = region[2:]
    warped = backend.ndimage.affine_transform(
        rgba.astype(xp.float32),
        backend.to_device(transform),
        output_shape=(_bucket(height), _bucket(width), 4),
        order=1,
        # Like OpenCV's BORDER_CONSTANT: blend toward 0 across the crop's edge.
        mode="grid-constant",
        cval=0.0,
    )[:height, :width]
    return xp.clip(xp.rint(warped), 0, 255).astype(xp.uint8)


def _bucket(side: int) -> int:
    """``side`` rounded up to a multiple of :data:`_SHAPE_STEP`."""
    return -(-side // _SHAPE_STEP) * _SHAPE_STEP


FINE_DETAIL_FROM = 1.25
"""The magnification (frame pixels per crop pixel) from which a face gets the frame's fine
detail back. Below it the crop holds about all the detail the frame has, and what the round
trip loses is resampling error, not detail."""

# The guided filter's window radius and regulariser (grey levels squared) for the gain: a
# window of 5 crop pixels is about one stroke of the bundled packs. The regulariser is the
# variance of a near-flat patch of skin: it keeps the gain near 0 where the photo has no
# structure to carry, as on a cartoon's flat colour.
_GAIN_RADIUS = 2
_GAIN_EPS = 4.0


def magnification(matrix: np.ndarray) -> float:
    """Frame pixels per crop pixel of a ``(2, 3)`` frame -> crop similarity."""
    return 1.0 / similarity_scale(matrix)


def _box_mean(backend: ArrayBackend, image: Any, radius: int) -> Any:
    """Mean over a ``2 * radius + 1`` square window, the border mirrored."""
    side = 2 * radius + 1
    if backend.name == "numpy":
        return cv2.boxFilter(image, -1, (side, side), borderType=cv2.BORDER_REFLECT)
    return backend.ndimage.uniform_filter(image, size=side, mode="reflect")


def fine_detail_gain(backend: ArrayBackend, photo: Any, stylized: Any) -> Any:
    """How much of the photo's own light-and-dark detail the stylized crop carries, per pixel.

    The slope of a local linear fit of the stylized crop's luma on the photo's, in 5-pixel
    windows, then averaged over the same windows: the ``a`` of He et al.'s guided filter
    ("Guided Image Filtering", 2013), which its fast version upsamples to carry a result
    computed at low resolution onto a full-resolution guide. A painted face that follows the
    photo's lids and lips gets their sharpness back; a cartoon's flat colour, which follows
    nothing, gets none. Clipped to 0-1: the photo's detail is never inverted nor amplified.

    Args:
        backend: where the arrays live.
        photo: ``(S, S, 3)`` ``uint8`` RGB aligned crop, the stylizer's input.
        stylized: ``(S, S, 3)`` ``uint8`` RGB, the stylizer's output for it.

    Returns:
        ``(S, S, 4)`` ``uint8`` layers for :func:`add_fine_detail`, warped into the frame as
        the colours are: the gain (255 = 1), the photo's luma, and two zero layers that keep
        the warp on OpenCV's four-channel fast path (a two-channel warp costs seven times
        as much).
    """
    xp = backend.xp
    weights = backend.to_device(LUMA_WEIGHTS)
    guide = photo.astype(xp.float32) @ weights
    painted = stylized.astype(xp.float32) @ weights
    guide_mean = _box_mean(backend, guide, _GAIN_RADIUS)
    painted_mean = _box_mean(backend, painted, _GAIN_RADIUS)
    covariance = _box_mean(backend, guide * painted, _GAIN_RADIUS) - guide_mean * painted_mean
    variance = _box_mean(backend, guide * guide, _GAIN_RADIUS) - guide_mean * guide_mean
    slope = covariance / (xp.maximum(variance, 0.0) + xp.float32(_GAIN_EPS))
    gain = xp.clip(_box_mean(backend, slope, _GAIN_RADIUS), 0.0, 1.0) * xp.float32(255.0)
    layers = xp.zeros((*guide.shape, 4), xp.uint8)
    layers[:, :, 0] = xp.rint(gain).astype(xp.uint8)
    layers[:, :, 1] = xp.clip(xp.rint(guide), 0, 255).astype(xp.uint8)
    return layers


def add_fine_detail(xp: Any, window: Any, warped: Any, detail: Any) -> Any:
    """Put the frame's detail finer than the crop back on a warped stylized crop.

    The detail is the frame's luma minus the crop's luma warped back (what the crop's
    resolution could not hold), added to each colour channel times the warped gain.

    Args:
        xp: ``numpy`` or ``cupy``.
        window: ``(H, W, 3)`` ``uint8`` RGB frame region (the photo at full resolution).
        warped: ``(H, W, 4)`` ``uint8`` RGB + mask, the stylized crop warped into it.
        detail: ``(H, W, 4)`` ``uint8``, :func:`fine_detail_gain`'s layers warped alike.

    Returns:
        ``(H, W, 4)`` ``uint8``: ``warped`` with the detail on its colour, the mask as it was.
    """
    if xp is np:
        # Saturating uint8 arithmetic in two halves (detail up, detail down): the same
        # result as signed arithmetic here, in a third less time.
        grey = cv2.cvtColor(window, cv2.COLOR_RGB2GRAY)
        gain, luma = detail[:, :, 0], detail[:, :, 1]
        up = cv2.multiply(cv2.subtract(grey, luma), gain, scale=1 / 255)
        down = cv2.multiply(cv2.subtract(luma, grey), gain, scale=1 / 255)
        none = np.zeros_like(up)
        lighter = cv2.add(warped, cv2.merge([up, up, up, none]))
        return cv2.subtract(lighter, cv2.merge([down, down, down, none]))
    grey = window.astype(xp.float32) @ xp.asarray(LUMA_WEIGHTS)
    gain = detail[:, :, 0].astype(xp.float32) / xp.float32(255.0)
    band = (grey - detail[:, :, 1].astype(xp.float32)) * gain
    colour = xp.clip(xp.rint(warped[:, :, :3].astype(xp.float32) + band[:, :, None]), 0, 255)
    return xp.dstack([colour.astype(xp.uint8), warped[:, :, 3]])


def blend(xp: Any, base: Any, warped: Any, weight: float) -> Any:
    """Blend warped colour over ``base`` by the warped mask times ``weight``.

    Args:
        xp: ``numpy`` or ``cupy``.
        base: ``(H, W, 3)`` ``uint8`` RGB frame region.
        warped: ``(H, W, 4)`` ``uint8`` RGB + mask (255 = fully stylized).
        weight: 0-1 overall opacity (the face's visibility).

    Returns:
        ``(H, W, 3)`` ``uint8`` RGB; exactly ``base`` where the mask or ``weight`` is 0,
        exactly the warped colour where both are full.
    """
    if xp is np:
        # OpenCV's fused weighted sum: a 400x450 head in 1.4 ms against 6.7 ms for the
        # float arrays below (within one grey level of them, exact at both ends).
        alpha = warped[:, :, 3].astype(np.float32) * np.float32(weight / 255.0)
        colour = np.ascontiguousarray(warped[:, :, :3])
        return cv2.blendLinear(colour, np.ascontiguousarray(base), alpha, 1 - alpha)
    alpha = warped[:, :, 3:].astype(xp.float32) * xp.float32(weight / 255.0)
    below = base.astype(xp.float32)
    mixed = below + (warped[:, :, :3].astype(xp.float32) - below) * alpha
    return xp.rint(mixed).astype(xp.uint8)


class Compositor:
    """Blends stylized face crops back into their frame.

    Args:
        mode: ``"head"`` blends through a matte of the whole head, hair included, refined
            by colour and smoothed over time per track (:class:`pipeline.matte.HeadMatte`);
            ``"face"`` inside the face outline (jaw, brows, forehead); ``"crop"`` the whole
            square crop.
        feather: soft-edge width as a fraction of the crop side.
        forehead: in ``"face"`` mode, how far above the brows the outline reaches, as a
            fraction of the brow-to-chin distance.
        device: ``"auto"`` (CuPy on a CUDA device, else NumPy), ``"cpu"`` or ``"cuda"``; or
            an :class:`~pipeline.xp.ArrayBackend` to use as it is.
        fine_detail: put the frame's detail finer than the crop back on faces magnified at
            least :data:`FINE_DETAIL_FROM` times (:func:`fine_detail_gain`); ``False`` shows
            every face at its crop's resolution.
    """

    def __init__(
        self,
        mode: Mode = "head",
        *,
        feather: float = 0.03,
        forehead: float = 0.3,
        device: Device | ArrayBackend = "auto",
        fine_detail: bool = True,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"Compositor: mode must be one of {MODES}, got {mode!r}")
        if not 0.0 < feather < 0.25:
            raise ValueError(f"Compositor: feather must be in (0, 0.25), got {feather}")
        self.mode = mode
        self.feather = feather
        self.forehead = forehead
        self.fine_detail = fine_detail
        self.backend = device if isinstance(device, ArrayBackend) else select_backend(device)
        self._crop_masks: dict[int, np.ndarray] = {}
        self._matte = HeadMatte()

    def process(
        self,
        image: np.ndarray,
        crops: Sequence[AlignedCrop],
        stylized: Any,
        faces: Sequence[Face],
        in_place: Sequence[bool] | None = None,
    ) -> np.ndarray:
        """Composite every stylized crop into the frame.

        Args:
            image: ``(H, W, 3)`` ``uint8`` RGB frame; not modified.
            crops: ``N`` aligned crops the stylized ones were made from (matrix, landmarks).
            stylized: ``(N, S, S, 3)`` ``uint8`` RGB, stylized crop ``i`` for ``crops[i]``;
                NumPy, or an array of the compositor's backend (CuPy from a GPU stylizer).
            faces: ``N`` faces; ``faces[i].visibility`` scales crop ``i``'s opacity.
            in_place: ``in_place[i]``: face ``i`` is where the frame has it, so the frame's
                fine detail fits it; false for a face a style pack's geometry reshaped.
                All by default.

        Returns:
            ``(H, W, 3)`` ``uint8`` RGB: a new frame, or ``image`` itself when nothing is
            blended in (no faces, or all invisible).
        """
        if not len(crops) == len(stylized) == len(faces):
            raise ValueError(
                "Compositor.process: expected as many crops, stylized crops and faces, "
                f"got {len(crops)}, {len(stylized)} and {len(faces)}"
            )
        for crop, styled in zip(crops, stylized, strict=True):
            if styled.shape != crop.image.shape:
                raise ValueError(
                    f"Compositor.process: stylized crop is {styled.shape}, "
                    f"its aligned crop {crop.image.shape}"
                )
        shown = [i for i, face in enumerate(faces) if face.visibility > 0.0]
        masks = self.masks([crops[i] for i in shown])
        out = image
        for i, mask in zip(shown, masks, strict=True):
            crop, styled, face = crops[i], stylized[i], faces[i]
            styled, palette = self.paint_neck(crop, styled)
            if palette is not None:
                strip = neck_strip(image, crop, mask, palette)
                # First, so the square's fade at its bottom edge blends onto it.
                if strip is not None:
                    out = self._place_neck(out, image, strip, face.visibility)
            styled, shown_mask = self.over_background(crop, styled, mask)
            fits = in_place is None or in_place[i]
            photo = crop.image if fits else None
            out = self._place(out, image, styled, shown_mask, photo, crop.matrix, face.visibility)
        return out

    def masks(self, crops: Sequence[AlignedCrop]) -> list[np.ndarray]:
        """The blend mask of each of one frame's crops, in crop pixels.

        Call once per frame, in order: the head matte is smoothed per track over frames.

        Returns:
            One ``(S, S)`` ``uint8`` per crop, 255 = fully stylized, 0 = the input.
        """
        if self.mode == "head":
            return [np.rint(m * 255.0).astype(np.uint8) for m in self._matte.process(crops)]
        if self.mode == "face":
            return [face_mask(c.landmarks, c.size, self.feather, self.forehead) for c in crops]
        for crop in crops:
            if crop.size not in self._crop_masks:
                self._crop_masks[crop.size] = crop_mask(crop.size, self.feather)
        return [self._crop_masks[c.size] for c in crops]

    def reset(self) -> None:
        """Forget every track's head matte (call between unrelated clips)."""
        self._matte.reset()

    def _place(
        self,
        out: np.ndarray,
        image: np.ndarray,
        styled: Any,
        mask: np.ndarray,
        photo: np.ndarray | None,
        matrix: np.ndarray,
        weight: float,
    ) -> np.ndarray:
        """Blend one stylized crop into ``out``.

        Args:
            out: the frame composited so far: ``image`` itself until something is blended.
            image: ``(H, W, 3)`` ``uint8`` RGB input frame.
            styled: ``(S, S, 3)`` ``uint8`` the stylized crop, NumPy or the backend's.
            mask: ``(S, S)`` ``uint8`` NumPy, its blend mask.
            photo: ``(S, S, 3)`` ``uint8`` its aligned crop, where the frame's fine detail
                fits it; ``None`` where it does not (a face a pack's geometry reshaped).
            matrix: ``(2, 3)`` frame -> crop pixels.
            weight: 0-1 overall opacity (the face's visibility).

        Returns:
            ``out``, or a copy of ``image`` with the crop on it when ``out`` was ``image``.
        """
        region = _frame_region(mask, matrix, *image.shape[1::-1])
        if region is None:
            return out
        if out is image:
            out = image.copy()
        backend = self.backend
        # Crops from a GPU stylizer arrive as CuPy arrays, but for the head matte's edge
        # (over_background, on the host), and are blended on the GPU.
        styled = backend.to_device(styled)
        rgba = backend.xp.dstack([styled, backend.to_device(mask)])
        detail = None
        if self.fine_detail and photo is not None and magnification(matrix) >= FINE_DETAIL_FROM:
            detail = fine_detail_gain(backend, backend.to_device(photo), styled)
        window, source = _windows(out, image, region)
        mixed = place_crop(backend, window, source, rgba, detail, matrix, region, weight)
        window[...] = backend.to_numpy(mixed)
        return out

    def paint_neck(self, crop: AlignedCrop, styled: Any) -> tuple[Any, FacePalette | None]:
        """With the head matte, ``styled`` with its neck column under the jaw replaced by the
        crop's photo in the face's palette (:mod:`pipeline.neck`), and that palette.

        Args:
            crop: the aligned crop ``styled`` was made from (as drawn: a pack's geometry
                reshapes it).
            styled: ``(S, S, 3)`` ``uint8`` the stylized crop, NumPy or the backend's.

        Returns:
            A new array (a stylizer may hand the same crop out again, a keyframe's painting)
            and the palette; ``styled`` itself and ``None`` in the other modes, where no neck
            shows, or where the landmarks leave too few cheek pixels to fit a palette on.
        """
        palette = face_palette(crop, styled) if self.mode == "head" else None
        top, left, opacity = neck_opacity(crop.landmarks, crop.size)
        if palette is None or opacity.size == 0:
            return styled, palette
        box = (slice(top, None), slice(left, left + opacity.shape[1]))
        backend, xp = self.backend, self.backend.xp
        styled = backend.to_device(styled)
        colour = recolour(xp, backend.to_device(crop.image[box]), palette.colour_map)
        painted = styled.copy()
        rgba = xp.dstack([colour, backend.to_device(opacity)])
        painted[box] = blend(xp, styled[box], rgba, 1.0)
        return painted, palette

    def over_background(
        self, crop: AlignedCrop, styled: Any, mask: np.ndarray
    ) -> tuple[Any, np.ndarray]:
        """With the head matte, ``styled`` laid over what lies behind the head's soft edge
        (:func:`pipeline.matte.behind_the_edge`) where the style changed the photo's colour,
        and the mask that shows the two: blended over the frame through that mask, the edge
        shows the stylized head over the background, not over the photo's own head once
        more. Where the style kept the photo's colour there is nothing shown twice, so a
        style that changes nothing leaves the frame as it was. As they are in the other modes.

        Args:
            crop: the aligned crop ``styled`` was made from (as drawn).
            styled: ``(S, S, 3)`` ``uint8`` the stylized crop, NumPy or the backend's.
            mask: ``(S, S)`` ``uint8`` NumPy, its blend mask from :meth:`masks`.

        Returns:
            ``(S, S, 3)`` and ``(S, S)`` ``uint8`` NumPy (the stylized crop is copied to the
            host: about 0.2 MB), the mask 0 where ``mask`` is 0.
        """
        if self.mode != "head":
            return styled, mask
        styled = np.ascontiguousarray(self.backend.to_numpy(styled))
        head = mask.astype(np.float32) * np.float32(1.0 / 255.0)
        background, cover = behind_the_edge(crop.image, head)
        changed = cv2.transform(cv2.absdiff(styled, crop.image), _CHANNEL_MEAN)
        cover *= np.minimum(changed, np.float32(_CHANGED_FULLY)) * np.float32(1 / _CHANGED_FULLY)
        shown = np.rint((head + cover) * np.float32(255.0)).astype(np.uint8)
        # OpenCV's fused blend divides by the two weights' sum, as a blend of the head over
        # the background must where the head's own weight is under 1.
        return cv2.blendLinear(styled, background, head, cover), shown

    def _place_neck(
        self, out: np.ndarray, image: np.ndarray, strip: NeckStrip, weight: float
    ) -> np.ndarray:
        """Blend one neck strip into ``out``: the frame's own pixels recoloured, through the
        strip's warped opacity (``out`` and the result as for :meth:`_place`)."""
        region = _frame_region(strip.opacity, strip.matrix, *image.shape[1::-1])
        if region is None:
            return out
        if out is image:
            out = image.copy()
        backend, xp = self.backend, self.backend.xp
        window, source = _windows(out, image, region)
        # Four layers, the opacity last: OpenCV's fast path, and the GPU warp's layout.
        layers = np.zeros((*strip.opacity.shape, 4), np.uint8)
        layers[:, :, 3] = strip.opacity
        warped = _warp(backend, backend.to_device(layers), strip.matrix, region)
        colour = recolour(xp, backend.to_device(source), strip.colour_map)
        rgba = xp.dstack([colour, warped[:, :, 3]])
        window[...] = backend.to_numpy(blend(xp, backend.to_device(window), rgba, weight))
        return out


def _windows(
    out: np.ndarray, image: np.ndarray, region: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The region of the frame composited so far (a view to write into) and of the input
    frame: where faces overlap, ``out`` already holds the one composited before, while the
    photo's own pixels (fine detail, the neck's colours) come from the input."""
    x0, y0, width, height = region
    return out[y0 : y0 + height, x0 : x0 + width], image[y0 : y0 + height, x0 : x0 + width]


def _warp(
    backend: ArrayBackend, layers: Any, matrix: np.ndarray, region: tuple[int, int, int, int]
) -> Any:
    """Four ``uint8`` crop layers warped into the frame region, on the backend."""
    if backend.name == "numpy":
        return warp_crop_opencv(layers, matrix, region)
    return warp_crop_ndimage(backend, layers, matrix, region)


def place_crop(
    backend: ArrayBackend,
    below: np.ndarray,
    photo: np.ndarray | None,
    rgba: Any,
    detail: Any | None,
    matrix: np.ndarray,
    region: tuple[int, int, int, int],
    weight: float,
) -> Any:
    """One stylized crop put into a rectangle of the frame: warped, its fine detail put back,
    blended by its mask.

    Args:
        backend: where the work runs.
        below: ``(H, W, 3)`` ``uint8`` NumPy RGB, the rectangle as it is now.
        photo: ``(H, W, 3)`` ``uint8`` NumPy RGB, the rectangle of the input frame (the
            fine detail's source); ``None`` without ``detail``.
        rgba: ``(S, S, 4)`` ``uint8`` backend array, the stylized crop and its mask.
        detail: ``(S, S, 4)`` :func:`fine_detail_gain` layers, or ``None`` for none.
        matrix: ``(2, 3)`` frame -> crop affine; ``region``: ``x0, y0, width, height``.
        weight: 0-1 overall opacity.

    Returns:
        ``(H, W, 3)`` ``uint8`` backend array.
    """
    warped = _warp(backend, rgba, matrix, region)
    if detail is not None and photo is not None:
        layers = _warp(backend, detail, matrix, region)
        warped = add_fine_detail(backend.xp, backend.to_device(photo), warped, layers)
    return blend(backend.xp, backend.to_device(below), warped, weight)


def _frame_region(
    mask: np.ndarray, matrix: np.ndarray, width: int, height: int
) -> tuple[int, int, int, int] | None:
    """``x0, y0, w, h`` of the frame rectangle the mask's support lands in, or ``None``."""
    ys, xs = np.nonzero(mask[::4, ::4])
    if len(xs) == 0:
        return None
    # Sub-sampled support, widened by the step so no edge pixel is lost.
    lo = np.array([xs.min() * 4 - 4, ys.min() * 4 - 4], np.float64)
    hi = np.array([xs.max() * 4 + 4, ys.max() * 4 + 4], np.float64)
    corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [lo[0], hi[1]], [hi[0], hi[1]]])
    in_frame = transform_points(invert_affine(matrix), corners)
    x0 = max(int(np.floor(in_frame[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(in_frame[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(in_frame[:, 0].max())) + 2, width)
    y1 = min(int(np.ceil(in_frame[:, 1].max())) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0
