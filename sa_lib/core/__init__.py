"""Primitives every part uses: colour conversion, devices, downloads (hub), files (atomic writes, the repository
root, the output folder) and the one UsageError."""
