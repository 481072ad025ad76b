"""DeepSDF Explorer entry point: the viewer by default, subcommands for the pipeline.

    python main.py                      open the viewer on the bundled demo model
    python main.py view CKPT [--screenshot OUT.png]   the viewer on a checkpoint (headless render)
    python main.py preprocess ...       meshes → DeepSDF samples with colours
    python main.py augment ...          a data set + scaled / mirrored copies of its training shapes
    python main.py train ...            train a (class-conditioned, coloured) auto-decoder
    python main.py reconstruct ...      fit a new shape (mesh, points, scan, samples) by TTO
    python main.py evaluate ...         metrics on held-out shapes, TTO ablations
    python main.py import-deepsdf EXP --out M.pt   an experiment of the original DeepSDF code → a checkpoint

This module only dispatches; each subcommand lives in ``core.commands`` (or ``viewer``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name → (module with add_arguments/run, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "preprocess": ("core.commands.preprocess_command", "meshes → DeepSDF samples with colours"),
    "augment": ("core.commands.augment_command", "a data set → a new one with scaled / mirrored training copies"),
    "train": ("core.commands.train_command", "train the auto-decoder on a data set folder"),
    "reconstruct": ("core.commands.reconstruct_command", "fit codes to a new observation (test-time optimisation)"),
    "evaluate": ("core.commands.evaluate_command", "reconstruct held-out shapes and report metrics"),
    "import-deepsdf": ("core.commands.import_deepsdf_command", "a DeepSDF experiment directory → a checkpoint"),
    "edit": ("core.commands.edit_command", "drag, pin, paint or graft a shape: codes optimised under constraints"),
    "view": ("viewer.view_command", "open the viewer (default command); --screenshot renders headless"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepsdf-explorer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # a part that is not installed must not break the others
            sub = subparsers.add_parser(name, help=f"{help_text} (unavailable: {exc})")
            sub.set_defaults(_unavailable=str(exc))
            continue
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        if "view" in SUBCOMMANDS:
            argv = ["view", *argv]
        else:
            build_parser().print_help()
            return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_unavailable", None):
        print(f"error: '{args.command}' is unavailable: {args._unavailable}", file=sys.stderr)
        return 2
    if not hasattr(args, "_run"):
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
