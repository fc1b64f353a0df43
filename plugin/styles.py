"""Turn what a user types after ``--style`` into a :class:`~pipeline.stylizer.Stylizer`.

A style is ``"cartoon"`` (the built-in classical filter), the name of a style pack bundled
with facestyle, the path to a ``.safetensors`` style pack made by ``facestyle adapt``, or,
for keyframes painted by the teacher (``keyframes`` > 0), the path to an artwork itself.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import StyleError
from pipeline.stylizer import Stylizer

__all__ = ["BUILTIN_STYLES", "DEFAULT_STYLE", "available_styles", "resolve_style", "style_file"]

BUILTIN_STYLES = ("cartoon",)

# The style `facestyle render` and the API use when none is given.
DEFAULT_STYLE = "painterly"

_PACK_SUFFIX = ".safetensors"


def _bundled_packs() -> dict[str, Path]:
    """Bundled pack names and files (importing ``models`` only here keeps start-up fast)."""
    from models.pack import bundled_packs

    return bundled_packs()


def available_styles() -> list[str]:
    """Every style name ``resolve_style`` accepts besides a pack path, built-ins first."""
    return [*BUILTIN_STYLES, *sorted(_bundled_packs())]


def _artwork_painter(path: Path, keyframes: int, lag: int | None) -> Stylizer:
    """The teacher painting keyframes from an artwork, with no pack made from it."""
    if not keyframes:
        raise StyleError(
            f"{path} is an artwork, not a style pack: make a pack from it with 'facestyle "
            "adapt', or paint keyframes from it (--keyframes N)"
        )
    from models.exemplar import load_image, prepare_exemplar
    from models.keyframes import ARTWORK_IDENTITY, KeyframePainter, KeyframeSettings
    from pipeline.errors import NoFaceError

    try:
        exemplar = prepare_exemplar(load_image(path))
    except NoFaceError:
        raise StyleError(
            f"no face was found in {path}; make a pack from it with 'facestyle adapt' and "
            "its --points, then paint keyframes from the pack"
        ) from None
    settings = KeyframeSettings(every=keyframes, lag=lag)
    return KeyframePainter(exemplar, settings, path.stem, ARTWORK_IDENTITY)


def _load_pack(
    path: Path, device: str, strokes: float, skin_hue: float, keyframes: int, lag: int | None
) -> Stylizer:
    from models.pack import load_pack
    from models.pack_stylizer import PackStylizer

    pack = load_pack(path)
    if not keyframes:
        return PackStylizer(pack, device, strokes=strokes, skin_hue=skin_hue)
    from models.keyframes import KeyframePainter, KeyframeSettings, pack_exemplar

    # Painted in the background, a face is the student's until its first painting arrives.
    student = None if lag == 0 else PackStylizer(pack, device, strokes=strokes, skin_hue=skin_hue)
    settings = KeyframeSettings(every=keyframes, lag=lag)
    return KeyframePainter(
        pack_exemplar(pack), settings, pack.name, pack.identity, student, pack.geometry
    )


def resolve_style(
    spec: str | Path,
    device: str = "cpu",
    strokes: float = 1.0,
    skin_hue: float = 0.0,
    keyframes: int = 0,
    keyframe_lag: int | None = 0,
) -> Stylizer:
    """The stylizer a style spec names.

    Args:
        spec: ``"cartoon"``, a bundled pack name, a path to a ``.safetensors`` pack, or
            with ``keyframes``, a path to an artwork (an image file).
        device: where a pack's student runs, ``"cpu"`` or ``"cuda"`` (already resolved, see
            :func:`plugin.settings.resolve_device`); the classical style runs on the CPU.
        strokes: a pack's canvas strength (see :class:`plugin.settings.RestyleSettings`).
        skin_hue: how much of the person's own skin hue a pack that keeps skin tone gives
            each face (see :class:`plugin.settings.RestyleSettings`).
        keyframes: 0 for the pack's real-time student; N for its teacher painting every
            N-th frame of each face from the pack's artwork (or from the artwork given),
            carried between (:class:`models.keyframes.KeyframePainter`; ``strokes`` and
            ``skin_hue`` are the student's and do not apply).
        keyframe_lag: 0 paints each keyframe in line; N or ``None`` on a thread of its own,
            shown N frames later or as soon as it is ready (live), with a pack's student
            showing each face until its first painting arrives
            (:attr:`models.keyframes.KeyframeSettings.lag`).

    Raises:
        StyleError: the name is unknown, the file is missing, the pack is invalid, an
            artwork is given without keyframes or has no face found, or keyframes are
            asked of the cartoon style, which has no artwork.
    """
    path = style_file(spec)
    if path is None:  # the one built-in style
        if keyframes:
            raise StyleError(
                "keyframes are painted from a style pack's artwork, and the cartoon style "
                "has none; choose a pack or an artwork with --style"
            )
        from pipeline.cartoon import CartoonStylizer

        return CartoonStylizer()
    if _is_artwork(path):
        return _artwork_painter(path, keyframes, keyframe_lag)
    return _load_pack(path, device, strokes, skin_hue, keyframes, keyframe_lag)


def _is_artwork(path: Path) -> bool:
    """Whether ``path`` names an image file (by its suffix)."""
    from pipeline.sources.images import IMAGE_SUFFIXES

    return path.suffix.lower() in IMAGE_SUFFIXES


def style_file(spec: str | Path) -> Path | None:
    """The pack file (or artwork) a style spec names, or ``None`` for a built-in style.

    What a style renders is the file's bytes; batch rendering hashes them to see when a
    style has changed.

    Raises:
        StyleError: as :func:`resolve_style`, for a name it does not know.
    """
    text = str(spec)
    if text in BUILTIN_STYLES:
        return None
    path = Path(text)
    artwork = _is_artwork(path)
    if text.endswith(_PACK_SUFFIX) or artwork or path.exists():
        if not path.is_file():
            kind = "artwork" if artwork else "style pack"
            raise StyleError(f"{kind} {path} does not exist; check the path")
        return path
    bundled = _bundled_packs()
    if text in bundled:
        return bundled[text]
    raise StyleError(
        f"unknown style {text!r}; choose one of {', '.join(available_styles())} "
        f"or give the path to a {_PACK_SUFFIX} style pack"
    )
