"""``facestyle stylize-image STYLE CONTENT -o OUT.png``: the teacher on one photo.

The quickest way to judge a new exemplar: every face in CONTENT is painted with STYLE's
patches by the guided patch synthesis (about a second a face) and blended back into the
photo; ``--sheet`` adds a side-by-side of exemplar, content and result per face.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from models.exemplar import Exemplar, load_image, prepare_exemplar
from models.teacher import TeacherParams, stylize_face
from pipeline.align import align_face
from pipeline.atomic import check_output, write_image
from pipeline.composite import Compositor
from pipeline.detail import MAX_IDENTITY, restore_detail
from pipeline.errors import NoFaceError, OutputError
from pipeline.frame import AlignedCrop, Face
from pipeline.landmarks import detect_landmarks
from pipeline.tracker import box_from_landmarks
from plugin.commands._args import (
    add_fine_detail_option,
    add_mask_option,
    add_points_option,
    number_in,
)

__all__ = ["add_parser", "run", "stylize_photo"]

_DEFAULTS = TeacherParams()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stylize-image",
        help="paint the faces of one photo after a style portrait (slow, exact)",
        description=(
            "Paint every face in CONTENT with the patches of the STYLE portrait by guided "
            "patch synthesis (the teacher a style pack learns from; about a second a face)."
        ),
    )
    parser.add_argument("style", type=Path, help="style portrait (PNG, JPEG, ...)")
    parser.add_argument("content", type=Path, help="photo whose faces are restyled")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output image (.png)")
    add_points_option(
        parser,
        "the style portrait's left eye, right eye, nose tip, left and right mouth corner "
        "(10 numbers, image pixels) when its face is not detected",
    )
    parser.add_argument(
        "--sheet", type=Path, help="also write exemplar | content | result per face here"
    )
    parser.add_argument(
        "--identity",
        type=number_in(float, 0, MAX_IDENTITY),
        metavar="K",
        default=0.0,
        help=f"add back the content's fine detail, 0 (pure style) to {MAX_IDENTITY:g} (0)",
    )
    add_mask_option(parser)
    add_fine_detail_option(parser)
    parser.add_argument(
        "--appearance",
        type=number_in(float, 0),
        default=_DEFAULTS.appearance,
        help=f"weight of the content's own shading; higher keeps more of the person "
        f"({_DEFAULTS.appearance:g})",
    )
    parser.add_argument(
        "--positional",
        type=number_in(float, 0),
        default=_DEFAULTS.positional,
        help=f"weight of where-on-the-face; higher copies the exemplar's layout "
        f"({_DEFAULTS.positional:g})",
    )
    parser.add_argument(
        "--skin",
        type=number_in(float, 0),
        default=_DEFAULTS.skin,
        help=f"weight of skin colour: skin painted with the artist's skin, and what the artist "
        f"painted on the forehead (a hat, a turban) kept on the hair; 0 turns it off "
        f"({_DEFAULTS.skin:g})",
    )
    parser.add_argument(
        "--uniformity",
        type=number_in(float, 0),
        default=_DEFAULTS.uniformity,
        help=f"penalty on reusing one exemplar patch; 0 turns it off ({_DEFAULTS.uniformity:g})",
    )
    parser.set_defaults(run=run)


def stylize_photo(
    exemplar: Exemplar,
    photo: np.ndarray,
    params: TeacherParams,
    identity: float = 0.0,
    mask: str = "head",
    fine_detail: bool = True,
) -> tuple[np.ndarray, list[AlignedCrop], np.ndarray]:
    """Restyle every face in a photo with the teacher.

    Args:
        exemplar: the prepared style portrait.
        photo: ``(H, W, 3)`` ``uint8`` RGB.
        params: teacher settings.
        identity: :func:`pipeline.detail.restore_detail` strength.
        mask: compositor mode, ``"head"``, ``"face"`` or ``"crop"``.
        fine_detail: see :class:`pipeline.composite.Compositor`.

    Returns:
        The restyled ``(H, W, 3)`` ``uint8`` RGB photo, the aligned crops, and the stylized
        crops ``(N, S, S, 3)`` ``uint8`` RGB.

    Raises:
        NoFaceError: the photo shows no face.
    """
    found = detect_landmarks(photo)
    if not found:
        raise NoFaceError("no face found in the content photo; use a frontal, well-lit face")
    crops = [align_face(photo, landmarks, exemplar.size, i) for i, landmarks in enumerate(found)]
    stylized = np.stack([stylize_face(exemplar, c.image, c.landmarks, params) for c in crops])
    stylized = restore_detail(stylized, np.stack([c.image for c in crops]), identity)
    faces = [Face(i, box_from_landmarks(lm), lm) for i, lm in enumerate(found)]
    shown = Compositor(mode=mask, fine_detail=fine_detail).process(photo, crops, stylized, faces)
    return shown, crops, stylized


def _sheet(exemplar: Exemplar, crops: list[AlignedCrop], stylized: np.ndarray) -> np.ndarray:
    """Rows of exemplar | content | result crops under a labelled header, RGB."""
    size = exemplar.size
    header = np.full((36, 3 * size, 3), 255, np.uint8)
    for column, label in enumerate(("style", "content", "result")):
        cv2.putText(
            header, label, (column * size + 10, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2
        )
    rows = [
        np.concatenate([exemplar.image, crop.image, result], axis=1)
        for crop, result in zip(crops, stylized, strict=True)
    ]
    return np.concatenate([header, *rows], axis=0)


def run(args: argparse.Namespace) -> int:
    for path in (args.output, args.sheet):
        # Before a second of synthesis, not after it.
        if path is None:
            continue
        if not cv2.haveImageWriter(str(path)):
            raise OutputError(f"cannot write {path}: unknown image type; use a .png or .jpg name")
        check_output(path)
    exemplar = prepare_exemplar(load_image(args.style), args.points)
    photo = load_image(args.content)
    params = TeacherParams(
        appearance=args.appearance,
        positional=args.positional,
        skin=args.skin,
        uniformity=args.uniformity,
    )
    result, crops, stylized = stylize_photo(
        exemplar, photo, params, args.identity, args.mask, args.fine_detail
    )
    write_image(args.output, result)
    if args.sheet:
        write_image(args.sheet, _sheet(exemplar, crops, stylized))
    faces = "face" if len(crops) == 1 else "faces"
    print(f"wrote {args.output} ({len(crops)} {faces} restyled)")
    return 0
