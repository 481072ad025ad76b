"""The Qt desktop viewer and editor. Only Qt lives here; all computation is in ``core``.

Structure (kaolin-wisp / pyvistaqt style):

* :mod:`viewer.state` holds what is shown (model, codes, display options, undo/redo) and
  emits change signals; panels (:mod:`viewer.panels`, one per file) edit it and observe it;
* :mod:`viewer.workers` run ``core`` (meshing, SDF slices, test-time optimisation) off the UI
  thread and send plain numpy arrays / dataclasses back through signals;
* :mod:`viewer.scene` is the only place that touches VTK, always on the UI thread;
* :mod:`viewer.main_window` wires them together and owns menus, dialogs and the status bar;
* :mod:`viewer.app`, :mod:`viewer.view_command` and :mod:`viewer.headless` start it, from the
  command line or headless for screenshots.
"""
