"""Marker of the ComfyUI-Login custom node baked into the ComfyUI stand-in image.

The stand-in's main.py implements ComfyUI-Login's behaviour itself (see its docstring) whenever
custom_nodes/ComfyUI-Login/__init__.py exists, so this package holds no code. A deployment that
installs the node from git or an archive bind-mounts its own copy over this directory.
"""

NODE_CLASS_MAPPINGS: dict = {}
