"""Research studies: the experiments behind docs/results.md, kept apart from the library (as pytorch3d's projects/).

Each module is a command run from the repository root as a module, ``python -m studies.<name> --help``, so
one study can use another's public names (``from studies.recipe_study import Study``). They import the
library (``core``, ``viewer``) like any user would; nothing in ``core`` or ``viewer`` imports a study.
"""
