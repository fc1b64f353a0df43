"""The GPU self-check (``pytest -m gpu``; ``scripts/gpu-check`` runs it): the CUDA path against
the CPU path. Every test here skips on a machine without a CUDA device.

The student and compositor checks use no face detector and no video library (a bundled
photo cut to a crop, the pack's own exemplar landmarks), so they run on any machine with
PyTorch and CuPy; the render check also needs the full install.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.pack import bundled_packs, load_pack
from models.pack_stylizer import PackStylizer
from pipeline.composite import Compositor
from pipeline.frame import AlignedCrop, Face

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _needs_cupy() -> None:
    if importlib.util.find_spec("cupy") is None:
        pytest.skip('needs CuPy (pip install "facestyle[gpu]")')


def _photo() -> np.ndarray:
    """NASA's public-domain portrait of Eileen Collins, ``(512, 512, 3)`` ``uint8`` RGB
    (straight from scikit-image: :mod:`pipeline.samples` needs PyAV, which this file does
    not)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def _crops(count: int, size: int, landmarks: np.ndarray) -> list[AlignedCrop]:
    """``count`` different crops of a bundled photo, with the given crop landmarks."""
    photo = _photo()
    crops = []
    for i in range(count):
        window = photo[10 * i : 300 + 10 * i, 100 + 8 * i : 390 + 8 * i]
        image = cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA)
        matrix = np.array([[1.0, 0.0, -100.0 - 40 * i], [0.0, 1.0, -60.0 - 30 * i]])
        crops.append(AlignedCrop(image, matrix, landmarks.astype(np.float32), track_id=i))
    return crops


def test_the_student_in_half_precision_on_the_gpu_matches_float32_on_the_cpu() -> None:
    _needs_cupy()
    pack = load_pack(bundled_packs()["painterly"])
    crops = _crops(4, pack.crop_size, pack.exemplar_landmarks)
    on_cpu = PackStylizer(pack, "cpu", torch.float32, smoothing=0.0).stylize(crops)
    gpu = PackStylizer(pack, "cuda", smoothing=0.0)
    on_gpu = gpu.stylize(crops)
    assert gpu.dtype == torch.float16
    # Handed over through DLPack: still on the GPU, as CuPy, for the compositor.
    assert type(on_gpu).__module__.startswith("cupy")
    difference = np.abs(on_gpu.get().astype(np.int16) - on_cpu)
    assert on_gpu.shape == on_cpu.shape == (4, pack.crop_size, pack.crop_size, 3)
    assert difference.mean() < 1.0
    assert np.percentile(difference, 99) <= 6


@pytest.mark.parametrize("mode", ["face", "crop"])
def test_the_cupy_compositor_matches_the_numpy_one(mode: str) -> None:
    _needs_cupy()
    import cupy

    pack = load_pack(bundled_packs()["painterly"])
    frame = cv2.resize(_photo(), (640, 640))
    crops = _crops(2, 256, pack.exemplar_landmarks)
    stylized = np.stack([255 - crop.image for crop in crops])
    faces = [
        Face(i, np.array([100, 60, 356, 316], np.float32), crop.landmarks, visibility=v)
        for i, (crop, v) in enumerate(zip(crops, (1.0, 0.6), strict=True))
    ]
    on_cpu = Compositor(mode, device="cpu").process(frame, crops, stylized, faces)
    gpu = Compositor(mode, device="cuda")
    assert gpu.backend.name == "cupy"
    on_gpu = gpu.process(frame, crops, cupy.asarray(stylized), faces)
    assert isinstance(on_gpu, np.ndarray)
    assert np.abs(on_gpu.astype(np.int16) - on_cpu).max() <= 1
    untouched = np.all(on_cpu == frame, axis=2)
    np.testing.assert_array_equal(on_gpu[untouched], frame[untouched])
    assert (~untouched).sum() > 10000


def test_the_cupy_fine_detail_matches_the_numpy_one() -> None:
    _needs_cupy()
    import cupy

    frame = cv2.resize(_photo(), (1280, 1280))
    # The photo's face, cut at 0.4 of the frame's scale: enlarged 2.5 times on the way back.
    matrix = np.array([[0.4, 0.0, -40.0], [0.0, 0.4, -30.0]])
    image = cv2.warpAffine(frame, matrix, (256, 256))
    crop = AlignedCrop(image, matrix, np.zeros((68, 2), np.float32))
    face = Face(0, np.zeros(4, np.float32), np.zeros((68, 2), np.float32))
    on_cpu = Compositor("crop", device="cpu").process(frame, [crop], image[None], [face])
    soft = Compositor("crop", device="cpu", fine_detail=False)
    assert np.abs(soft.process(frame, [crop], image[None], [face]) - on_cpu.astype(int)).max() > 20
    gpu = Compositor("crop", device="cuda")
    on_gpu = gpu.process(frame, [crop], cupy.asarray(image[None]), [face])
    assert np.abs(on_gpu.astype(np.int16) - on_cpu).max() <= 2


def test_the_student_trains_on_the_gpu() -> None:
    from models.canvas import make_canvas
    from models.generator import GeneratorConfig
    from models.train import Artwork, TrainingSet, TrainSettings, train_student

    rng = np.random.default_rng(0)
    rgb = rng.uniform(-1, 1, (4, 3, 64, 64)).astype(np.float32)
    guides = rng.uniform(-1, 1, (4, 2, 16, 16)).astype(np.float32)
    # Skin in the middle, hair above, background around: the artwork term has parts to match.
    parts = np.full((64, 64), -1, np.int8)
    parts[8:24, 12:52], parts[24:56, 12:52] = 0, 1
    data = TrainingSet(
        rgb,
        guides,
        np.clip(rgb * 0.5, -1, 1),
        make_canvas(64),
        parts=np.repeat(parts[None], 4, axis=0),
        artwork=Artwork(rgb[0], parts),
    )
    settings = TrainSettings(steps=30, batch=4, patch=32, device="cuda")
    student, figures = train_student(data, GeneratorConfig(guide_channels=2), settings)
    assert figures["train_device"] == "cuda" and figures["steps"] == 30
    assert figures["loss_artwork"] > 0
    assert all(p.device.type == "cpu" for p in student.parameters())
    # The output layer starts at zero (the identity): non-zero weights mean it trained.
    assert student.out.weight.abs().sum() > 0


def test_a_render_on_cuda_keeps_every_frame_and_its_time(tmp_path: Path) -> None:
    _needs_cupy()
    for module in ("av", "dlib"):
        pytest.importorskip(module)
    from pipeline.sources import open_source
    from plugin.api import render
    from plugin.bench import generate_clip

    clip = generate_clip(tmp_path / "in.mp4", (640, 480), faces=2, frames=20)
    summary = render(clip, tmp_path / "out.mp4", style="painterly", device="cuda")
    with open_source(clip) as source:
        expected = [(frame.pts, frame.time) for frame in source]
    with open_source(summary.output) as source:
        got = [(frame.pts, frame.time) for frame in source]
    assert summary.frames == len(expected) == 20 and summary.faces_tracked == 2
    assert [pts for pts, _ in got] == [pts for pts, _ in expected]
    assert got[-1][1] == pytest.approx(float(Fraction(19, 25)), abs=1e-3)


def test_nvdec_decodes_what_the_software_decoder_does(tmp_path: Path) -> None:
    pytest.importorskip("av")
    from pipeline.sources import VideoFileSource
    from pipeline.video_engines import nvdec_error
    from plugin.bench import generate_clip

    if nvdec_error() is not None:
        pytest.skip(nvdec_error())
    clip = generate_clip(tmp_path / "in.mp4", (640, 480), faces=1, frames=12)
    with VideoFileSource(clip) as software, VideoFileSource(clip, hardware=True) as hardware:
        pairs = list(zip(software, hardware, strict=True))
    assert [a.pts for a, _ in pairs] == [b.pts for _, b in pairs] and len(pairs) == 12
    errors = np.stack([a.image.astype(np.float64) - b.image for a, b in pairs])
    # Both decode the same bitstream; only the colour conversion of the frames may differ.
    assert 10 * np.log10(255**2 / max(np.mean(errors**2), 1e-9)) > 35


def test_nvenc_encodes_every_frame_at_its_time(tmp_path: Path) -> None:
    pytest.importorskip("av")
    from pipeline.sinks.file import FileSink
    from pipeline.sources import VideoFileSource
    from pipeline.video_engines import nvenc_error
    from plugin.bench import generate_clip

    if nvenc_error() is not None:
        pytest.skip(nvenc_error())  # datacenter GPUs (A100, H100, H200) have no NVENC
    clip = generate_clip(tmp_path / "in.mp4", (640, 480), faces=1, frames=12)
    output = tmp_path / "out.mp4"
    with VideoFileSource(clip) as source, FileSink.matching(output, source, hardware=True) as sink:
        expected = []
        for frame in source:
            sink.write(frame)
            expected.append((frame.time, frame.image))
    with VideoFileSource(output) as written:
        got = [(frame.time, frame.image) for frame in written]
    assert [t for t, _ in got] == pytest.approx([t for t, _ in expected], abs=1e-3)
    errors = np.stack(
        [a.astype(np.float64) - b for (_, a), (_, b) in zip(got, expected, strict=True)]
    )
    assert 10 * np.log10(255**2 / max(np.mean(errors**2), 1e-9)) > 30
