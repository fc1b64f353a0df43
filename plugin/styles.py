"""Turn what a user types after ``--style`` into a :class:`~pipeline.stylizer.Stylizer`.

A style is ``"cartoon"`` (the built-in classical filter), the name of a style pack bundled
with facestyle, or the path to a ``.safetensors`` style pack made by ``facestyle adapt``.
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


def _load_pack(
    path: Path, device: str, strokes: float, skin_hue: float, keyframes: int
) -> Stylizer:
    from models.pack import load_pack

    pack = load_pack(path)
    if keyframes:
        from models.keyframes import KeyframePainter, KeyframeSettings, pack_exemplar

        settings = KeyframeSettings(every=keyframes)
        return KeyframePainter(pack_exemplar(pack), settings, pack.name, pack.identity)
    from models.pack_stylizer import PackStylizer

    return PackStylizer(pack, device, strokes=strokes, skin_hue=skin_hue)


def resolve_style(
    spec: str | Path,
    device: str = "cpu",
    strokes: float = 1.0,
    skin_hue: float = 0.0,
    keyframes: int = 0,
) -> Stylizer:
    """The stylizer a style spec names.

    Args:
        spec: ``"cartoon"``, a bundled pack name, or a path to a ``.safetensors`` pack.
        device: where a pack's student runs, ``"cpu"`` or ``"cuda"`` (already resolved, see
            :func:`plugin.settings.resolve_device`); the classical style runs on the CPU.
        strokes: a pack's canvas strength (see :class:`plugin.settings.RestyleSettings`).
        skin_hue: how much of the person's own skin hue a pack that keeps skin tone gives
            each face (see :class:`plugin.settings.RestyleSettings`).
        keyframes: 0 for the pack's real-time student; N for its teacher painting every
            N-th frame of each face from the pack's artwork, carried between
            (:class:`models.keyframes.KeyframePainter`; ``strokes`` and ``skin_hue`` are
            the student's and do not apply).

    Raises:
        StyleError: the name is unknown, the pack file is missing, the pack is invalid, or
            keyframes are asked of the cartoon style, which has no artwork.
    """
    path = style_file(spec)
    if path is None:  # the one built-in style
        if keyframes:
            raise StyleError(
                "keyframes are painted from a style pack's artwork, and the cartoon style "
                "has none; choose a pack with --style"
            )
        from pipeline.cartoon import CartoonStylizer

        return CartoonStylizer()
    return _load_pack(path, device, strokes, skin_hue, keyframes)


def style_file(spec: str | Path) -> Path | None:
    """The pack file a style spec names, or ``None`` for a built-in style.

    What a style renders is the pack file's bytes; batch rendering hashes them to see when a
    pack has changed.

    Raises:
        StyleError: as :func:`resolve_style`, for a name it does not know.
    """
    text = str(spec)
    if text in BUILTIN_STYLES:
        return None
    path = Path(text)
    if text.endswith(_PACK_SUFFIX) or path.exists():
        if not path.is_file():
            raise StyleError(f"style pack {path} does not exist; check the path")
        return path
    bundled = _bundled_packs()
    if text in bundled:
        return bundled[text]
    raise StyleError(
        f"unknown style {text!r}; choose one of {', '.join(available_styles())} "
        f"or give the path to a {_PACK_SUFFIX} style pack"
    )
