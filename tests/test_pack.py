"""Style packs: bit-exact round trips, and hostile or broken files refused with a clear error."""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import torch
from pack_factory import make_pack

from models.generator import StudentGenerator
from models.pack import FORMAT_VERSION, bundled_packs, load_pack, save_pack
from models.pack_stylizer import PackStylizer, as_graph, build_generator, default_dtype
from pipeline.align import align_face
from pipeline.detail import DEFAULT_IDENTITY_SCALE
from pipeline.errors import StyleError
from pipeline.landmarks import detect_landmarks


@pytest.fixture
def pack_file(tmp_path: Path) -> Path:
    return save_pack(make_pack(), tmp_path / "style.safetensors")


def _resave(
    path: Path, tensors: dict, meta: dict | None = None, raw_meta: dict | None = None
) -> None:
    header = raw_meta if raw_meta is not None else {"facestyle": json.dumps(meta, sort_keys=True)}
    path.write_bytes(safetensors.numpy.save(tensors, header))


def _contents(path: Path) -> tuple[dict, dict]:
    tensors = safetensors.numpy.load(path.read_bytes())
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    meta = json.loads(json.loads(data[8 : 8 + size])["__metadata__"]["facestyle"])
    return tensors, meta


def test_round_trip_is_bit_exact(pack_file: Path, tmp_path: Path) -> None:
    original = make_pack()
    loaded = load_pack(pack_file)
    assert loaded.name == original.name and loaded.config == original.config
    assert loaded.guides == original.guides and loaded.crop_size == original.crop_size
    assert (loaded.identity, loaded.geometry, loaded.training) == (
        original.identity,
        original.geometry,
        original.training,
    )
    for key, value in original.weights.items():
        assert loaded.weights[key].tobytes() == value.tobytes()
    assert loaded.thumbnail.tobytes() == original.thumbnail.tobytes()
    assert loaded.exemplar_landmarks.tobytes() == original.exemplar_landmarks.tobytes()
    assert loaded.canvas is not None and original.canvas is not None
    assert loaded.canvas.tobytes() == original.canvas.tobytes()
    again = save_pack(loaded, tmp_path / "again.safetensors")
    assert again.read_bytes() == pack_file.read_bytes()


def test_skin_tone_choice_round_trips_and_older_packs_match_the_histogram(
    tmp_path: Path,
) -> None:
    kept = save_pack(replace(make_pack(), keep_tone=True), tmp_path / "kept.safetensors")
    assert load_pack(kept).keep_tone
    # A pack written before keep_tone existed has no such key: it was trained on guides
    # matched to the whole histogram, so it must load as keep_tone=False.
    tensors, meta = _contents(kept)
    del meta["keep_tone"]
    _resave(kept, tensors, meta)
    assert load_pack(kept).keep_tone is False
    meta["keep_tone"] = "yes"
    _resave(kept, tensors, meta)
    with pytest.raises(StyleError, match="keep_tone"):
        load_pack(kept)


def test_palette_round_trips_and_older_packs_tell_it_from_their_thumbnail(
    tmp_path: Path,
) -> None:
    mono = save_pack(replace(make_pack(), monochrome=True), tmp_path / "mono.safetensors")
    assert load_pack(mono).monochrome
    # A pack written before the key existed was recoloured when its thumbnail is
    # monochrome, and still is.
    tensors, meta = _contents(mono)
    del meta["monochrome"]
    _resave(mono, tensors, meta)
    assert load_pack(mono).monochrome is False  # make_pack's thumbnail is colour noise
    tensors["thumbnail"] = np.repeat(tensors["thumbnail"][..., :1], 3, axis=2)
    _resave(mono, tensors, meta)
    assert load_pack(mono).monochrome is True
    meta["monochrome"] = 1
    _resave(mono, tensors, meta)
    with pytest.raises(StyleError, match="monochrome"):
        load_pack(mono)


def test_identity_scale_round_trips_and_older_packs_restore_fine_detail(tmp_path: Path) -> None:
    wide = save_pack(replace(make_pack(), identity_scale=32.0), tmp_path / "wide.safetensors")
    assert load_pack(wide).identity_scale == 32.0
    assert PackStylizer(load_pack(wide)).identity_scale == 32.0
    # A pack written before identity_scale existed restores fine detail only, as it did.
    tensors, meta = _contents(wide)
    del meta["identity_scale"]
    _resave(wide, tensors, meta)
    assert load_pack(wide).identity_scale == DEFAULT_IDENTITY_SCALE
    for hostile in (0.0, 1e9, float("nan"), "32", True):
        meta["identity_scale"] = hostile
        _resave(wide, tensors, meta)
        with pytest.raises(StyleError, match="identity_scale"):
            load_pack(wide)


def _flip_header_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[12] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))


def _zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"a": 1}))


def _wrong_version(path: Path) -> None:
    tensors, meta = _contents(path)
    _resave(path, tensors, {**meta, "format_version": FORMAT_VERSION + 1})


def _wrong_architecture(path: Path) -> None:
    tensors, meta = _contents(path)
    _resave(path, tensors, {**meta, "architecture": "mystery-net"})


def _wrong_shape(path: Path) -> None:
    tensors, meta = _contents(path)
    tensors["generator.enc1.0.weight"] = np.zeros((8, 3, 5, 5), np.float32)
    _resave(path, tensors, meta)


def _wrong_dtype(path: Path) -> None:
    tensors, meta = _contents(path)
    tensors["generator.out.bias"] = tensors["generator.out.bias"].astype(np.float64)
    _resave(path, tensors, meta)


def _missing_weight(path: Path) -> None:
    tensors, meta = _contents(path)
    del tensors["generator.out.bias"]
    _resave(path, tensors, meta)


def _nan_weight(path: Path) -> None:
    tensors, meta = _contents(path)
    tensors["generator.out.bias"] = np.full_like(tensors["generator.out.bias"], np.nan)
    _resave(path, tensors, meta)


def _nan_canvas(path: Path) -> None:
    tensors, meta = _contents(path)
    tensors["canvas"] = np.full_like(tensors["canvas"], np.nan)
    _resave(path, tensors, meta)


def _missing_canvas(path: Path) -> None:
    tensors, meta = _contents(path)
    del tensors["canvas"]
    _resave(path, tensors, meta)


def _wrong_size_canvas(path: Path) -> None:
    tensors, meta = _contents(path)
    tensors["canvas"] = np.zeros((1, 128, 128), np.float32)
    _resave(path, tensors, meta)


def _loud_canvas(path: Path) -> None:
    tensors, meta = _contents(path)
    tensors["canvas"] = tensors["canvas"] * np.float32(1e6)
    _resave(path, tensors, meta)


def _bad_metadata_type(path: Path) -> None:
    tensors, meta = _contents(path)
    _resave(path, tensors, {**meta, "crop_size": "sixty-four"})


def _extra_metadata_key(path: Path) -> None:
    tensors, meta = _contents(path)
    _resave(path, tensors, {**meta, "mood": "sunny"})


def _foreign_safetensors(path: Path) -> None:
    tensors, _ = _contents(path)
    _resave(path, tensors, raw_meta={"format": "pt"})


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_flip_header_byte, "header"),
        (_truncate, "truncated"),
        (_pickle, "pickle"),
        (_zip, "zip"),
        (_wrong_version, "format version"),
        (_wrong_architecture, "unknown architecture"),
        (_wrong_shape, "enc1.0.weight"),
        (_wrong_dtype, "out.bias"),
        (_missing_weight, "missing"),
        (_nan_weight, "NaN"),
        (_nan_canvas, "canvas"),
        (_missing_canvas, "canvas"),
        (_wrong_size_canvas, "canvas"),
        (_loud_canvas, "canvas"),
        (_bad_metadata_type, "crop_size"),
        # The culprit is named, and the optional keys a good pack may have are listed too.
        (_extra_metadata_key, r"unknown \['mood'\]; expected .* optionally .*'keep_tone'"),
        (_foreign_safetensors, "no facestyle metadata"),
        (_empty, "empty"),
    ],
)
def test_broken_or_hostile_packs_are_refused(pack_file: Path, damage, message: str) -> None:
    damage(pack_file)
    with pytest.raises(StyleError, match=message) as raised:
        load_pack(pack_file)
    assert str(pack_file) in str(raised.value)


def test_v1_packs_without_a_canvas_still_load(tmp_path: Path) -> None:
    # A pack made before the canvas: architecture v1, no canvas keys or tensor, nearest
    # upsampling. It loads, stylizes, and is saved back byte for byte.
    config = replace(make_pack().config, canvas=0, upsample="nearest")
    weights = {k: v.detach().numpy() for k, v in StudentGenerator(config).state_dict().items()}
    old = save_pack(
        replace(make_pack(), config=config, weights=weights, canvas=None), tmp_path / "v1.st"
    )
    tensors, meta = _contents(old)
    assert meta["architecture"] == "facestyle-student-v1" and "canvas" not in tensors
    assert set(meta["config"]) == {"guide_channels", "widths", "blocks"}
    loaded = load_pack(old)
    assert loaded.config == config and loaded.canvas is None
    assert save_pack(loaded, tmp_path / "again.st").read_bytes() == old.read_bytes()
    with pytest.raises(StyleError, match="canvas"):
        replace(loaded, canvas=np.zeros((1, 64, 64), np.float32))


def test_missing_pack_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StyleError, match="not found"):
        load_pack(tmp_path / "nope.safetensors")


def test_pack_fields_are_validated_on_construction() -> None:
    with pytest.raises(StyleError, match="geometry"):
        replace(make_pack(), geometry=3.0)
    with pytest.raises(StyleError, match="guide channels"):
        replace(make_pack(), guides=("regions",))


def test_at_least_three_bundled_packs() -> None:
    assert len(bundled_packs()) >= 3


@pytest.mark.parametrize("name", sorted(bundled_packs()))
def test_bundled_pack_loads_and_stylizes_a_real_face(name: str, astronaut: np.ndarray) -> None:
    pack = load_pack(bundled_packs()[name])
    assert bundled_packs()[name].stat().st_size < 5 * 1024 * 1024
    crop = align_face(astronaut, detect_landmarks(astronaut)[0], pack.crop_size)
    for dtype in (torch.float32, torch.bfloat16):
        out = PackStylizer(pack, dtype=dtype).stylize([crop])
        assert out.shape == (1, pack.crop_size, pack.crop_size, 3) and out.dtype == np.uint8
        # A style changes the face, and is not a blank or a different picture altogether.
        change = np.abs(out[0].astype(np.float32) - crop.image).mean()
        assert 3.0 < change < 100.0


def test_many_crops_are_painted_as_each_alone(astronaut: np.ndarray) -> None:
    """On the CPU the student takes a few crops a call (a batch past the caches is slower):
    five different faces in one frame come out as each does alone, in their order."""
    pack = load_pack(bundled_packs()["painterly"])
    stylizer = PackStylizer(pack)
    crop = align_face(astronaut, detect_landmarks(astronaut)[0], pack.crop_size)
    crops = [replace(crop, image=np.roll(crop.image, 9 * i, axis=1)) for i in range(5)]
    rgb, guides = stylizer.inputs(crops)
    together = stylizer.forward(rgb, guides).numpy()
    alone = [stylizer.forward(rgb[i : i + 1], guides[i : i + 1]).numpy()[0] for i in range(5)]
    assert len(together) == 5
    for i in range(5):  # bit for bit here; a CPU may pick other kernels for other batch sizes
        np.testing.assert_allclose(together[i], alone[i], atol=0.5)
    assert np.abs(together[0] - together[1]).mean() > 1.0


@pytest.mark.parametrize("side", [256, 128])
def test_the_students_graph_paints_as_the_module_does(side: int, astronaut: np.ndarray) -> None:
    """On the CPU the student runs as one traced graph (the lock is taken back once a call):
    at every batch and crop size it paints what the module paints, not only the traced one."""
    pack = load_pack(bundled_packs()["painterly"])
    dtype = default_dtype(torch.device("cpu"))
    net = build_generator(pack).to(dtype=dtype).to(memory_format=torch.channels_last)
    graph = as_graph(net, pack.crop_size, dtype)
    crop = align_face(astronaut, detect_landmarks(astronaut)[0], side)
    crops = [replace(crop, image=np.roll(crop.image, 9 * i, axis=1)) for i in range(3)]
    stylizer = PackStylizer(pack)
    assert isinstance(stylizer._net, torch.jit.ScriptModule)
    rgb, guides = stylizer.inputs(crops)
    canvas = np.repeat(stylizer._canvas_at(side)[None], len(crops), axis=0)
    for count in (1, 3):
        inputs = [
            torch.from_numpy(a[:count]).to(dtype).contiguous(memory_format=torch.channels_last)
            for a in (rgb, guides, canvas)
        ]
        with torch.inference_mode():
            assert torch.equal(graph(*inputs), net(*inputs))
