"""Evaluation: how good a reconstruction is, and the held-out split's evaluation (``main.py evaluate``).

Measures
    ``metrics`` (Chamfer, F-scores, normal consistency, colour, components and floaters), ``thickness``
    (which surface points lie on slender parts), ``grid_reference`` (the exact SDF meshed on the evaluation's
    grid: the grid's ceiling), ``ground_truth_quality`` (a data set's own fields against their source meshes).
The split's evaluation, in the order it runs
    ``settings`` (:class:`EvalSettings`), ``held_out_split`` (the shapes of a split, from the data set's
    manifest), ``ground_truth`` (what each is measured against), ``thin_masks`` (its thin-part mask),
    ``class_choice`` (the class or prompt it is fitted under), ``loop`` (:func:`evaluate_split`: fit, mesh and
    measure every shape), ``report`` (per-class summaries, markdown tables, ``results.*``), ``ablation``
    (several loss sets on the same shapes).
Pictures
    ``figures`` (grids of meshes rendered off screen).

Import from the modules themselves; this package re-exports nothing, so importing one measure does not load
the rest.
"""
