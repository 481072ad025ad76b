"""One dock panel per module; each edits :class:`viewer.state.ViewerState` and observes it."""
