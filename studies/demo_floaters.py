"""Floating fragments of the bundled demo model's own training shapes (issue 11's baseline).

For the first ``--per-class`` training codes of every class: extract the mesh at ``--resolution``
(:func:`core.meshing.extract_mesh` on ``TrainedModel.sdf_fn``), count its connected components and
floaters (:func:`core.evaluation.metrics.mesh_components`: a component other than the largest holding < 5 % of
the surface area), and the ground truth's pieces (:func:`core.evaluation.metrics.point_components` on points
sampled on the rebuilt built-in shape, same seed as the demo's data). Prints a markdown table.

    .venv/bin/python -m studies.demo_floaters            # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from core.utils.markdown import markdown_table


def _gt_pieces(shape_id: str) -> int | None:
    """Pieces of the built-in shape ``<class>_<NNN>`` (None when the id is not one)."""
    from core.data.sources.synthetic import build_shape
    from core.evaluation.metrics import point_components, sample_mesh_surface

    class_name, _, index = shape_id.rpartition("_")
    try:
        scene, _ = build_shape(class_name, int(index))
    except ValueError:
        return None
    mesh = scene.to_geometry()
    points, _, _, _ = sample_mesh_surface(mesh.vertices, mesh.faces, 30_000, 0)
    return point_components(points)


HEADERS = ("class", "n", "with floaters %", "components", "floaters", "largest share", "gt components")


def table_row(name: str, group: list[dict]) -> list[object]:
    """One table row: the means over ``group`` (:func:`core.evaluation.metrics.mesh_components`' dicts with
    ``gt_components``), each to the digits it is read at; "—" for gt components when no shape has them."""
    gt = [r["gt_components"] for r in group if r["gt_components"] is not None]
    return [
        name,
        len(group),
        f"{100 * np.mean([r['has_floaters'] for r in group]):.0f}",
        f"{np.mean([r['components'] for r in group]):.1f}",
        f"{np.mean([r['floaters'] for r in group]):.1f}",
        f"{np.mean([r['largest_share'] for r in group]):.2f}",
        f"{np.mean(gt):.1f}" if gt else None,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=Path("resources/demo/demo.pt"))
    parser.add_argument("--per-class", type=int, default=6, help="first N training codes of every class")
    parser.add_argument("--resolution", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from core.evaluation.metrics import mesh_components
    from core.meshing import extract_mesh
    from core.model import load_trained_model

    torch.set_num_threads(args.threads)
    model = load_trained_model(args.ckpt, device="cpu")
    t0 = time.perf_counter()
    rows: dict[str, list[dict]] = {}
    for class_name in model.class_names:
        for k in model.codes_of_class(class_name)[: args.per_class]:
            condition = model.training_condition(k)  # the condition the code was trained with
            mesh = extract_mesh(model.sdf_fn(model.shape_codes[k], condition), args.resolution, device="cpu")
            stats = mesh_components(mesh.vertices, mesh.faces)
            stats["gt_components"] = _gt_pieces(model.shape_ids[k])
            rows.setdefault(class_name, []).append(stats)

    groups = [*rows.items(), ("**all**", [r for group in rows.values() for r in group])]
    print(f"Demo model {args.ckpt}, first {args.per_class} training codes per class, {args.resolution}³\n")
    print(markdown_table(HEADERS, [table_row(name, group) for name, group in groups]))
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
