"""The pieces of ``hem continual``: benchmarks from the dataset registry, Avalanche strategies by name,
the multi-head network, the hooks that give the criterion its class counts and show progress, and
hem's own checkpoint of a run between experiences (``checkpoint``, ``plugin_state``, ``structure``).
Avalanche is imported inside the functions that build with it (``hem --help`` stays fast)."""
