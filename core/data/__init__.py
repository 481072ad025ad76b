"""Data: reading meshes, normalising, sampling signed distances, the samples format, the manifest, the training
set, preprocessing and the mesh sources."""
