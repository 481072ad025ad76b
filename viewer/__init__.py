"""The Qt desktop viewer and editor. Only Qt lives here; all computation is in ``core``.

Structure (kaolin-wisp / pyvistaqt style): :mod:`viewer.state` holds what is shown and emits
change signals; panels (``viewer.panels``) edit the state; :mod:`viewer.workers` run ``core``
off the UI thread and send plain numpy arrays back; :mod:`viewer.scene` is the only place that
touches VTK, always on the UI thread.
"""
