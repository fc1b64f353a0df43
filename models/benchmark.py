"""How fast the student runs: ``python -m models.benchmark [PACK]``.

Times one 256x256 crop through the student (float32 and bfloat16, channels_last) and the
per-frame guides, on a real aligned face, with the median of many runs. Numbers only; the
tests never assert on time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from models.generator import GeneratorConfig, StudentGenerator, count_flops
from models.pack import load_pack
from models.pack_stylizer import PackStylizer
from models.student_input import DEFAULT_GUIDES, guide_channels

__all__ = ["main", "median_ms"]


def median_ms(run: Callable[[], object], repeats: int = 50, warmup: int = 5) -> float:
    """Median wall time of ``run()`` in milliseconds."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pack", nargs="?", help="a .safetensors pack (default: a fresh student)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, help="PyTorch CPU threads (default: all cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from pipeline.align import align_face
    from pipeline.landmarks import detect_landmarks
    from pipeline.samples import face_photo

    photo = face_photo("astronaut")
    crop = align_face(photo, detect_landmarks(photo)[0], 256)
    if args.pack:
        pack = load_pack(args.pack)
        config = pack.config
    else:
        config = GeneratorConfig(guide_channels(DEFAULT_GUIDES))
        pack = None
    print(f"threads {torch.get_num_threads()}, {count_flops(config) / 1e9:.2f} GFLOPs per crop")
    net = StudentGenerator(config).eval()
    rgb = torch.zeros(1, 3, 256, 256)
    guides = torch.zeros(1, config.guide_channels, 64, 64)
    canvas = torch.zeros(1, config.canvas, 256, 256)
    for dtype in (torch.float32, torch.bfloat16):
        model = net.to(dtype).to(memory_format=torch.channels_last)
        x, g, c = (
            t.to(dtype).contiguous(memory_format=torch.channels_last) for t in (rgb, guides, canvas)
        )
        with torch.inference_mode():
            ms = median_ms(lambda m=model, a=x, b=g, k=c: m(a, b, k), args.repeats)
        print(f"student {str(dtype).removeprefix('torch.'):9s} {ms:6.2f} ms per 256x256 crop")
    if pack is not None:
        for dtype in (torch.float32, torch.bfloat16):
            stylizer = PackStylizer(pack, dtype=dtype)
            ms = median_ms(lambda s=stylizer: s.stylize([crop]), args.repeats)
            print(
                f"pack    {str(dtype).removeprefix('torch.'):9s} {ms:6.2f} ms per crop, guides included"
            )
        inputs_ms = median_ms(lambda: stylizer.inputs([crop]), args.repeats)
        print(f"guides + geometry   {inputs_ms:6.2f} ms per crop")


if __name__ == "__main__":
    main()
