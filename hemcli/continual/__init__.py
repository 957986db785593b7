"""The pieces of ``hem continual``: benchmarks from the dataset registry, Avalanche strategies by name,
the multi-head network, and the hooks that give the criterion its class counts and show progress.
Avalanche is imported inside the functions that build with it (``hem --help`` stays fast)."""
