"""Stage 1, perturbation: degraded copies of images (motion blur, low light, defocus, noise, JPEG) at severity
ladders, RobustMAD's exact preset, and the files side: folders or items files in, images + manifest + items out.

- :mod:`~judgekit.perturbation.ops`: the operations on uint8 arrays (pure functions, vectorised);
- :mod:`~judgekit.perturbation.files`: conditions, severities, reading and writing, the manifest.

May import :mod:`judgekit.io`; must not import judging, statistics, reports or the CLI.
"""
