"""Small utilities every layer uses: atomic files, folder locks, devices, cancellation, errors, safe names, typed
config reading."""
