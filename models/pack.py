"""The style pack: one ``.safetensors`` file holding a trained student and what it needs.

A pack may come from a stranger, so loading it must never run code: it is read with
``safetensors`` only (never pickle), and everything in it is checked against what this
version of facestyle knows before any of it is used.

File layout (safetensors, so any safetensors reader can inspect it):

- tensors ``generator.<parameter>``: the student's weights, ``float32``, exactly the names
  and shapes of :class:`models.generator.StudentGenerator` for the stored config;
- tensor ``exemplar_landmarks``: ``(68, 2)`` ``float32``, the exemplar's landmarks in crop
  pixels;
- tensor ``luminance_quantiles``: ``(65,)`` ``float32``, the exemplar's face luminance
  quantiles (reference of the appearance guide);
- tensor ``thumbnail``: ``(T, T, 3)`` ``uint8`` RGB, the aligned exemplar, ``T <= 256``
  (whole, ``T`` the crop size, since keyframe painting paints from it; 128 before);
- tensor ``canvas``: ``(C, S, S)`` ``float32``, the noise the student paints from
  (:mod:`models.canvas`), when its config has ``C`` > 0 canvas channels (v2 packs);
- metadata key ``facestyle``: one JSON object (keys sorted, so saving is byte-deterministic)
  with ``format`` (:data:`FORMAT`), ``format_version`` (:data:`FORMAT_VERSION`),
  ``architecture``, ``config``, ``crop_size``, ``guides``, ``name``, ``identity``,
  ``geometry``, ``training`` (figures such as steps, seconds, losses), ``keep_tone``
  (absent in packs made before it existed: they matched the whole histogram),
  ``identity_scale`` (absent in packs made before it: they restore fine detail only) and
  ``monochrome`` (absent in packs made before it: told from the thumbnail).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

from models.generator import ARCHITECTURES, GeneratorConfig, StudentGenerator
from models.student_input import GUIDE_CHANNELS, StudentReference, guide_channels
from pipeline.atomic import write_atomically
from pipeline.detail import DEFAULT_IDENTITY_SCALE, MAX_IDENTITY, MAX_IDENTITY_SCALE
from pipeline.errors import StyleError
from pipeline.guides import is_monochrome

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_PACK_BYTES",
    "StylePack",
    "bundled_packs",
    "load_pack",
    "save_pack",
]

FORMAT = "facestyle-pack"
FORMAT_VERSION = 1
MAX_PACK_BYTES = 64 * 1024 * 1024
_MAX_HEADER_BYTES = 1024 * 1024
_MAX_THUMBNAIL = 256
_METADATA_KEY = "facestyle"
_WEIGHT_PREFIX = "generator."
_PACKS_DIR = Path(__file__).resolve().parent / "packs"


@dataclass(frozen=True)
class StylePack:
    """A trained student and its metadata.

    Attributes:
        name: short human name (``facestyle packs`` lists it).
        config: the student's hyper-parameters.
        weights: the student's ``state_dict`` as ``float32`` NumPy arrays, keyed by
            parameter name (without the ``generator.`` prefix).
        crop_size: side ``S`` of the aligned crops the student was trained on.
        guides: the guide channels that follow RGB in the student's input, in order (names
            from :data:`models.student_input.GUIDE_CHANNELS`).
        exemplar_landmarks: ``(68, 2)`` ``float32`` the exemplar's landmarks in crop pixels.
        luminance_quantiles: ``(65,)`` ``float32`` increasing, the exemplar's face luminance
            quantiles (the appearance guide's reference).
        thumbnail: ``(T, T, 3)`` ``uint8`` RGB, the aligned exemplar.
        identity: default identity <-> style strength for ``restore_detail`` (0 = all style).
        identity_scale: the blur (pixels of a 256 px crop) separating the person's detail
            that identity restores from the face's shape (``restore_detail``'s ``sigma``).
        geometry: how far faces are warped toward the exemplar's proportions, 0..1.
        keep_tone: each stylized face is brought back to the person's own skin tone (see
            :attr:`models.exemplar.Exemplar.keep_tone`).
        monochrome: the student's output is recoloured in the exemplar's ink and paper
            (see :attr:`models.exemplar.Exemplar.monochrome`).
        training: figures from training (steps, seconds, final losses, ...); numbers or
            strings only.
        canvas: ``(C, S, S)`` ``float32`` the student's canvas (:mod:`models.canvas`);
            ``None`` when the config takes none.
    """

    name: str
    config: GeneratorConfig
    weights: dict[str, np.ndarray]
    crop_size: int
    guides: tuple[str, ...]
    exemplar_landmarks: np.ndarray
    luminance_quantiles: np.ndarray
    thumbnail: np.ndarray
    identity: float = 0.0
    identity_scale: float = DEFAULT_IDENTITY_SCALE
    geometry: float = 0.0
    keep_tone: bool = False
    monochrome: bool = False
    training: dict[str, float | int | str] = field(default_factory=dict)
    canvas: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_pack(self)

    @property
    def reference(self) -> StudentReference:
        """The exemplar's side of the student's guides."""
        return StudentReference(self.exemplar_landmarks, self.luminance_quantiles, self.crop_size)


def _fail(path: str | Path, problem: str) -> StyleError:
    return StyleError(f"{path}: not a usable facestyle style pack: {problem}")


def _expected_shapes(config: GeneratorConfig) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in StudentGenerator(config).state_dict().items()}


def _check_pack(pack: StylePack) -> None:
    """Raise :class:`StyleError` unless every field is of the expected type and shape."""

    def expect(condition: bool, problem: str) -> None:
        if not condition:
            raise StyleError(f"not a usable facestyle style pack: {problem}")

    expect(isinstance(pack.name, str) and 0 < len(pack.name) <= 100, "name must be 1-100 chars")
    expect(isinstance(pack.config, GeneratorConfig), "config is not a GeneratorConfig")
    expect(
        type(pack.crop_size) is int and 64 <= pack.crop_size <= 1024 and pack.crop_size % 4 == 0,
        f"crop_size must be a multiple of 4 in 64..1024, got {pack.crop_size!r}",
    )
    expect(
        isinstance(pack.guides, tuple) and all(g in GUIDE_CHANNELS for g in pack.guides),
        f"unknown guides {pack.guides!r}; this facestyle knows {sorted(GUIDE_CHANNELS)}",
    )
    channels = guide_channels(pack.guides)
    expect(
        pack.config.guide_channels == channels,
        f"the student takes {pack.config.guide_channels} guide channels but {pack.guides} "
        f"make {channels}",
    )
    expected = _expected_shapes(pack.config)
    expect(
        set(pack.weights) == set(expected),
        f"weights do not match architecture {pack.config.architecture}: missing "
        f"{sorted(set(expected) - set(pack.weights))[:5]}, unexpected "
        f"{sorted(set(pack.weights) - set(expected))[:5]}",
    )
    for key, shape in expected.items():
        array = pack.weights[key]
        expect(
            isinstance(array, np.ndarray) and array.dtype == np.float32 and array.shape == shape,
            f"weight {key}: expected float32 {shape}, got "
            f"{getattr(array, 'dtype', type(array))} {getattr(array, 'shape', '')}",
        )
        expect(bool(np.isfinite(array).all()), f"weight {key} holds NaN or infinity")
    canvas, channels = pack.canvas, pack.config.canvas
    if channels:
        expect(
            isinstance(canvas, np.ndarray)
            and canvas.dtype == np.float32
            and canvas.shape == (channels, pack.crop_size, pack.crop_size)
            and bool(np.isfinite(canvas).all())
            and float(np.abs(canvas).max()) <= 16.0,
            f"canvas must be finite float32 ({channels}, {pack.crop_size}, {pack.crop_size}) "
            "within -16..16",
        )
    else:
        expect(canvas is None, "a canvas for a student that takes none")
    landmarks = pack.exemplar_landmarks
    expect(
        isinstance(landmarks, np.ndarray)
        and landmarks.dtype == np.float32
        and landmarks.shape == (68, 2)
        and bool(np.isfinite(landmarks).all()),
        "exemplar_landmarks must be finite float32 (68, 2)",
    )
    quantiles = pack.luminance_quantiles
    expect(
        isinstance(quantiles, np.ndarray)
        and quantiles.dtype == np.float32
        and quantiles.shape == (65,)
        and bool(np.isfinite(quantiles).all())
        and bool((np.diff(quantiles) >= 0).all()),
        "luminance_quantiles must be increasing finite float32 (65,)",
    )
    thumb = pack.thumbnail
    expect(
        isinstance(thumb, np.ndarray)
        and thumb.dtype == np.uint8
        and thumb.ndim == 3
        and thumb.shape[2] == 3
        and thumb.shape[0] == thumb.shape[1]
        and 8 <= thumb.shape[0] <= _MAX_THUMBNAIL,
        f"thumbnail must be uint8 (T, T, 3) with 8 <= T <= {_MAX_THUMBNAIL}",
    )
    for key in ("keep_tone", "monochrome"):
        value = getattr(pack, key)
        expect(type(value) is bool, f"{key} must be true or false, got {value!r}")
    for key, low, high in (
        ("identity", 0.0, MAX_IDENTITY),
        ("identity_scale", 1.0, MAX_IDENTITY_SCALE),
        ("geometry", 0.0, 1.0),
    ):
        value = getattr(pack, key)
        expect(
            type(value) in (int, float) and low <= value <= high,
            f"{key} must be a number in {low}..{high}, got {value!r}",
        )
    expect(
        isinstance(pack.training, dict)
        and len(pack.training) <= 100
        and all(
            isinstance(k, str)
            and (
                (type(v) in (int, float) and math.isfinite(v))
                or (isinstance(v, str) and len(v) <= 1000)
            )
            for k, v in pack.training.items()
        ),
        "training figures must be at most 100 finite numbers or short strings",
    )


def _serialize(pack: StylePack) -> bytes:
    tensors = {f"{_WEIGHT_PREFIX}{k}": np.ascontiguousarray(v) for k, v in pack.weights.items()}
    tensors["exemplar_landmarks"] = np.ascontiguousarray(pack.exemplar_landmarks)
    tensors["luminance_quantiles"] = np.ascontiguousarray(pack.luminance_quantiles)
    tensors["thumbnail"] = np.ascontiguousarray(pack.thumbnail)
    if pack.canvas is not None:
        tensors["canvas"] = np.ascontiguousarray(pack.canvas)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": pack.config.architecture,
        "config": pack.config.to_dict(),
        "crop_size": pack.crop_size,
        "guides": list(pack.guides),
        "name": pack.name,
        "identity": pack.identity,
        "identity_scale": pack.identity_scale,
        "geometry": pack.geometry,
        "keep_tone": pack.keep_tone,
        "monochrome": pack.monochrome,
        "training": pack.training,
    }
    # One metadata key: safetensors writes several keys in an unstable order.
    return safetensors.numpy.save(tensors, {_METADATA_KEY: json.dumps(meta, sort_keys=True)})


def save_pack(pack: StylePack, path: str | Path) -> Path:
    """Write ``pack`` to ``path`` atomically (temporary file, then rename).

    Raises:
        OutputError: the file cannot be written.
    """
    return write_atomically(path, _serialize(pack))


def _read_header(path: Path, data: bytes) -> dict[str, object]:
    if data[:4] == b"PK\x03\x04":
        raise _fail(
            path,
            "it is a zip archive (a torch.save/pickle checkpoint?); packs are "
            "safetensors files and facestyle never unpickles",
        )
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise _fail(path, "it is a Python pickle; facestyle never unpickles (it could run code)")
    if len(data) < 10:
        raise _fail(path, f"only {len(data)} bytes; the file is empty or truncated")
    size = int.from_bytes(data[:8], "little")
    if size > _MAX_HEADER_BYTES or size + 8 > len(data):
        raise _fail(
            path, "the header length is impossible; the file is truncated or not a safetensors file"
        )
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _fail(path, f"the header is not valid JSON ({error})") from error
    if not isinstance(header, dict):
        raise _fail(path, "the header is not a JSON object")
    ends = [
        entry["data_offsets"][1]
        for key, entry in header.items()
        if key != "__metadata__"
        and isinstance(entry, dict)
        and isinstance(entry.get("data_offsets"), list)
        and len(entry["data_offsets"]) == 2
        and isinstance(entry["data_offsets"][1], int)
    ]
    if ends and max(ends) > len(data) - 8 - size:
        raise _fail(path, f"the tensor data stops short ({len(data)} bytes); the file is truncated")
    return header


def _parse_metadata(path: Path, header: dict[str, object]) -> dict[str, object]:
    outer = header.get("__metadata__")
    if not isinstance(outer, dict) or not isinstance(outer.get(_METADATA_KEY), str):
        raise _fail(path, "no facestyle metadata; it is some other safetensors file")
    try:
        meta = json.loads(outer[_METADATA_KEY])
    except json.JSONDecodeError as error:
        raise _fail(path, f"the facestyle metadata is not valid JSON ({error})") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, f"the metadata does not say format {FORMAT!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise _fail(
            path,
            f"format version {version!r}, this facestyle reads version {FORMAT_VERSION}; "
            "rebuild the pack with `facestyle adapt` or update facestyle",
        )
    if meta.get("architecture") not in ARCHITECTURES:
        raise _fail(
            path,
            f"unknown architecture {meta.get('architecture')!r}; "
            f"this facestyle knows {', '.join(ARCHITECTURES)}",
        )
    expected = {
        "format",
        "format_version",
        "architecture",
        "config",
        "crop_size",
        "guides",
        "name",
        "identity",
        "geometry",
        "training",
    }
    # keep_tone, identity_scale and monochrome came later: a pack without the first matched
    # the whole histogram, one without the second restores fine detail only, one without the
    # third is told from its thumbnail, as it was then.
    optional = {"keep_tone", "identity_scale", "monochrome"}
    unknown, missing = set(meta) - expected - optional, expected - set(meta)
    if unknown or missing:
        wrong = [
            f"{what} {sorted(keys)}"
            for what, keys in (("unknown", unknown), ("missing", missing))
            if keys
        ]
        raise _fail(
            path,
            f"metadata keys {', '.join(wrong)}; expected {sorted(expected)} and optionally "
            f"{sorted(optional)}",
        )
    return meta


def load_pack(path: str | Path) -> StylePack:
    """Read and validate a style pack.

    Raises:
        StyleError: the file is missing, too big, truncated, corrupt, a pickle/zip, of
            another format version or architecture, or any tensor or metadata field does not
            match what the architecture expects.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise StyleError(f"style pack {path} not found: {error.strerror or error}") from error
    if size > MAX_PACK_BYTES:
        raise _fail(path, f"{size} bytes is over the {MAX_PACK_BYTES} byte limit")
    data = path.read_bytes()
    meta = _parse_metadata(path, _read_header(path, data))
    try:
        tensors = safetensors.numpy.load(data)
    except (SafetensorError, ValueError) as error:
        raise _fail(path, f"the tensor data is corrupt ({error})") from error
    try:
        config = GeneratorConfig.from_dict(meta["config"], meta["architecture"])  # type: ignore[arg-type]
    except (ValueError, TypeError, KeyError) as error:
        raise _fail(path, f"bad generator config: {error}") from error
    guides = meta["guides"]
    if not isinstance(guides, list) or not all(isinstance(g, str) for g in guides):
        raise _fail(path, f"guides must be a list of names, got {guides!r}")
    names = {"exemplar_landmarks", "luminance_quantiles", "thumbnail"}
    optional = {"canvas"}
    if not names <= set(tensors) or not all(
        k in names | optional or k.startswith(_WEIGHT_PREFIX) for k in tensors
    ):
        raise _fail(path, f"unexpected tensor names {sorted(tensors)[:8]}")
    weights = {k[len(_WEIGHT_PREFIX) :]: v for k, v in tensors.items() if k not in names | optional}
    try:
        pack = StylePack(
            name=meta["name"],
            config=config,
            weights=weights,
            crop_size=meta["crop_size"],
            guides=tuple(guides),
            exemplar_landmarks=tensors["exemplar_landmarks"],
            luminance_quantiles=tensors["luminance_quantiles"],
            thumbnail=tensors["thumbnail"],
            identity=meta["identity"],
            identity_scale=meta.get("identity_scale", DEFAULT_IDENTITY_SCALE),
            geometry=meta["geometry"],
            keep_tone=meta.get("keep_tone", False),
            monochrome=meta.get("monochrome", False),
            training=meta["training"],
            canvas=tensors.get("canvas"),
        )
    except StyleError as error:
        raise StyleError(f"{path}: {error}") from error
    if "monochrome" not in meta:
        return replace(pack, monochrome=is_monochrome(pack.thumbnail))
    return pack


def bundled_packs() -> dict[str, Path]:
    """The packs that ship with facestyle: name (file stem) → path, sorted by name."""
    return {p.stem: p for p in sorted(_PACKS_DIR.glob("*.safetensors"))}
