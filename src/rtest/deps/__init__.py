"""Per-step dependencies: what each script needs beyond its image, and a cached image that has it.

requirements -> (scan) -> installed (what the image has) -> wheelhouse (host-side wheels)
-> image (a dependency image per distinct base + missing set) -> runtime (what a step's
container gets: that image, the wheelhouse read-only, PIP_NO_INDEX/PIP_FIND_LINKS).
"""
