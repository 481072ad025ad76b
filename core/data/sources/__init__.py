"""Data sources: the built-in procedural set, folders of meshes, Objaverse."""
