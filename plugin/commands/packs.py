"""``facestyle packs``: list the style packs that ship with facestyle."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "packs",
        help="list the bundled style packs",
        description="List the style packs that ship with facestyle (use one with --style NAME). "
        "'own strokes' is the stroke strength a pack was made with, which a run's --strokes K "
        "multiplies; 'palette mono' a pack that paints in its exemplar's one ink (adapt "
        "--palette).",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.pack import bundled_packs, load_pack

    packs = bundled_packs()
    if not packs:
        print("no bundled style packs in this installation; make one with `facestyle adapt`")
        return 0
    for name, path in packs.items():
        pack = load_pack(path)
        figures = pack.training
        print(
            f"{name:<12} {path.stat().st_size / 1e6:4.1f} MB  {pack.crop_size}px crops  "
            f"identity {pack.identity:g} scale {pack.identity_scale:g}  "
            f"own strokes {figures.get('strokes', 1.0):g}  "
            f"geometry {pack.geometry:g}  "
            f"palette {'mono' if pack.monochrome else 'colour'}  "
            f"trained {figures.get('steps', '?')} steps on {figures.get('faces', '?')} faces  "
            f"{path}"
        )
    return 0
