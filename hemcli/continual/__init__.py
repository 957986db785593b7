"""The pieces of ``hem continual`` (``hemcli.tasks.continual`` puts them in order): benchmarks from the
dataset registry (``benchmarks``), Avalanche strategies by name (``strategies``), the multi-head
network (``model``), the hooks that give the criterion its class counts and show progress (``hooks``),
the strategy built with them (``build``), Avalanche kept quiet (``quiet``), the experience loop
(``loop``), the accuracy matrix (``measure``), the result record (``result``), and hem's own
checkpoint of a run between experiences (``checkpoint``, ``plugin_state``, ``structure``).
Avalanche is imported inside the functions that build with it, or at the top of the modules only
those functions import (``model``, ``hooks``), so ``hem --help`` never imports it."""
