"""Mutation check: change one line of hemcli/ on purpose and see that a test fails (`make mutants`).

Each mutant is (name, file, the exact source text, its replacement, the tests expected to catch it).
The change is made in a copy of the checkout in a temporary folder, never in the working tree; a
mutant whose source text is gone (the code moved on) is reported as stale. A mutant that leaves
its tests green is a hole in the suite. Not part of `make test`: it runs the suite once per mutant.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANT_TIMEOUT = 1800

MUTANTS = [
    # issue 27: the command line's conventions
    ("a rerun of a finished run refused", "hemcli/cli/train.py", "        _already_done(spec)\n        return spec.path",
     "        raise", "tests/test_cli.py::test_the_same_run_twice_is_done_once_and_kept_byte_for_byte"),
    ("a dry run trains", "hemcli/cli/train.py", "        return _dry_run(spec, overwrite, resume, verbose)",
     "        _dry_run(spec, overwrite, resume, verbose)",
     "tests/test_cli_conventions.py::test_a_dry_run_prints_the_path_and_writes_nothing"),
    ("--dataset and --arch ignore the paper recipe", "hemcli/runs/spec.py",
     "    recipe = locate(recipe, task) if recipe is not None else paper_recipe(task, flags)",
     "    recipe = locate(recipe, task) if recipe is not None else None",
     "tests/test_cli_conventions.py::test_dataset_and_arch_pick_the_paper_recipe_and_say_so"),
    ("a result's recipe not the base of -r", "hemcli/runs/spec.py", "    if finished is not None:", "    if False:",
     "tests/test_cli_conventions.py::test_a_result_reruns_its_recipe_with_another_seed"),
    ("a sweep takes a flag of another task", "hemcli/cli/sweep.py", "        if task not in flag.tasks:",
     "        if False:", "tests/test_cli_conventions.py::test_sweep_refuses_a_flag_of_another_task"),
    ("a held lock reported as an unfinished run", "hemcli/runs/execute.py", "        check_free(path)\n", "",
     "tests/test_cli_processes.py::test_a_second_run_on_the_same_path_is_refused_and_ctrl_c_says_how_to_resume"),
    # issue 27: plug-in losses
    ("the probe batch skipped", "hemcli/losses/registry.py", "        probe(loss, num_classes)", "        pass",
     "tests/test_loss_plugins.py::test_a_bad_plugin_is_one_line_and_nothing_written"),
    ("segmentation plug-ins get the ignored pixels too", "hemcli/losses/plugins.py",
     "            valid = targets != self.ignore_index", "            valid = targets == targets",
     "tests/test_loss_plugins.py::test_pixels_reach_a_plugin_as_rows_without_the_ignored_ones"),
    ("a plug-in's pixels flattened with the classes mixed up", "hemcli/losses/plugins.py",
     "logits.movedim(1, -1).reshape(-1, logits.shape[1])", "logits.reshape(-1, logits.shape[1])",
     "tests/test_loss_plugins.py::test_pixels_reach_a_plugin_as_rows_without_the_ignored_ones"),
    ("a plug-in's class counts not passed", "hemcli/losses/plugins.py",
     '            known["class_counts"] = _require_counts(name, class_counts)',
     '            known["class_counts"] = None',
     "tests/test_loss_plugins.py::test_class_counts_num_classes_and_ignore_index_are_filled_in"),
    ("a plug-in's parameters not read from its signature", "hemcli/losses/plugins.py",
     "            defaults[p.name] = p.default", "            pass",
     "tests/test_loss_plugins.py::test_a_plugin_trains_in_every_task"),
    ("a module in the working folder not retried", "hemcli/losses/plugins.py", "        sys.path.append(here)\n",
     "", "tests/test_loss_plugins.py::test_a_module_in_the_working_folder_imports_with_it_off_sys_path"),
    ("the probe's gradient not checked", "hemcli/losses/plugins.py", "        if not value.requires_grad:",
     "        if False:", "tests/test_loss_plugins.py::test_a_bad_plugin_is_one_line_and_nothing_written"),
    ("a built-in name taken by an entry point not refused in hem losses", "hemcli/losses/registry.py",
     "        if info is not None and info.source == BUILT_IN:", "        if False:",
     "tests/test_loss_plugins.py::test_an_entry_point_names_a_loss"),
    # issue 26: the engine's one loop
    ("fit skips the checkpoint", "hemcli/engine/loop.py",
     "            saver.save(epoch, parts.net, optimizer, scheduler, generator, history)", "            pass",
     "tests/test_engine_loop.py"),
    ("fit resumes one epoch late", "hemcli/engine/loop.py", 'history, start = state["history"], state["epoch"] + 1',
     'history, start = state["history"], state["epoch"] + 2', "tests/test_engine_loop.py"),
    ("fit hands the network over before its last epoch", "hemcli/engine/loop.py",
     '    for epoch in range(start, cfg["epochs"] + 1):', '    for epoch in range(start, cfg["epochs"]):',
     "tests/test_engine_loop.py"),
    ("fit seeds after the task built its network", "hemcli/engine/loop.py",
     '    seed_everything(cfg["seed"], cfg["deterministic"])\n    generator = torch.Generator().manual_seed(cfg["seed"])'
     "  # the batches' order and augmentation\n    parts = build(generator)",
     '    generator = torch.Generator().manual_seed(cfg["seed"])\n    parts = build(generator)\n'
     '    seed_everything(cfg["seed"], cfg["deterministic"])', "tests/test_engine_loop.py"),
    ("fit ignores the schedule", "hemcli/engine/loop.py", "        scheduler.step()\n", "",
     "tests/test_engine_loop.py"),
    # issue 25: continual checkpoints
    ("a continual checkpoint's structure not checked", "hemcli/continual/checkpoint.py",
     'state.get("format") == FORMAT and fits(state, LAYOUT)', 'state.get("format") == FORMAT',
     "tests/test_continual_checkpoint.py"),
    ("the replay buffer left out of a continual checkpoint", "hemcli/continual/plugin_state.py",
     "    for label, group in policy.buffer_groups.items():", "    for label, group in {}.items():",
     "tests/test_continual.py::test_a_run_killed_after_an_experience_resumes_at_the_next"),
    ("an emptied replay group rebuilt without the buffer's fields", "hemcli/continual/plugin_state.py",
     "        if dataset is None and template is not None:", "        if False:",
     "tests/test_continual.py::test_a_run_killed_after_an_experience_resumes_at_the_next"),
    ("EWC's importances left out of a continual checkpoint", "hemcli/continual/plugin_state.py",
     '"importances": {int(exp): _params_state(params) for exp, params in plugin.importances.items()}}',
     '"importances": {}}', "tests/test_continual.py::test_a_run_killed_after_an_experience_resumes_at_the_next"),
    ("LwF's previous model left out of a continual checkpoint", "hemcli/continual/plugin_state.py",
     '"prev_model": None if lwf.prev_model is None else module_state(lwf.prev_model)}', '"prev_model": None}',
     "tests/test_continual.py::test_a_run_killed_after_an_experience_resumes_at_the_next"),
    ("LFL's previous model not restored", "hemcli/continual/plugin_state.py",
     '    plugin.prev_model = _module_like(state["prev_model"], strategy.model)', "    pass",
     "tests/test_continual.py::test_a_run_killed_after_an_experience_resumes_at_the_next"),
    ("SI's state not restored", "hemcli/continual/plugin_state.py",
     '    plugin.ewc_data = tuple(_params(part, cpu) for part in state["ewc_data"])\n'
     '    plugin.syn_data = {key: _params(part, cpu) for key, part in state["syn_data"].items()}', "    pass",
     "tests/test_continual.py::test_a_restored_strategy_holds_what_the_saved_one_held"),
    ("a resumed continual run resets the optimiser's state", "hemcli/continual/checkpoint.py",
     "    strategy.optimized_param_id = dict(model.named_parameters())\n", "",
     "tests/test_continual.py::test_a_run_killed_after_an_experience_resumes_at_the_next"),
    ("a resumed continual run draws other random numbers", "hemcli/continual/checkpoint.py",
     '    _set_rng_state(state["rng"], torch.device(strategy.device))', "    pass",
     "tests/test_continual.py::test_a_run_killed_after_an_experience_resumes_at_the_next"),
    ("frozen parameters thawed on resume", "hemcli/continual/checkpoint.py",
     '    plugin_state.set_frozen(model, state["frozen"])\n', "",
     "tests/test_continual.py::test_a_restored_strategy_holds_what_the_saved_one_held"),
    ("the class counts start again on resume", "hemcli/continual/checkpoint.py",
     '    counted.seen = state["class_counts"].to(torch.int64).clone()\n', "",
     "tests/test_continual.py::test_a_run_killed_after_an_experience_resumes_at_the_next"),
    ("Avalanche's prints on stdout", "hemcli/tasks/continual.py",
     "    with contextlib.redirect_stdout(sys.stderr):  # stdout is for the result path (| xargs hem report)\n",
     "    if True:\n",
     "tests/test_continual.py::test_avalanche_logs_go_to_stderr"),
    # issue 25: hostile input and operating-system faults
    ("no node budget for YAML aliases", "hemcli/values.py", "        expanded_size(node)\n", "        pass\n",
     "tests/test_values.py"),
    ("checkpoints loaded with weights_only=False", "hemcli/fileio.py",
     "torch.load(handle, map_location=\"cpu\", weights_only=True)",
     "torch.load(handle, map_location=\"cpu\", weights_only=False)",
     "tests/test_bad_input.py::test_hostile_input_is_refused_at_once tests/test_continual_checkpoint.py"),
    ("an empty selection of evaluations accepted", "hemcli/recipes/__init__.py",
     '    if field.kind == "list[str]" and choices is not None and not value:', "    if False:",
     "tests/test_bad_input.py::test_hostile_input_is_refused_at_once"),
    ("a FIFO among results is read", "hemcli/report/reading.py",
     '        elif entry.name.endswith(".json") and not is_regular(path):', "        elif False:",
     "tests/test_faults.py::test_a_fifo_among_results_is_skipped_by_report_and_refused_by_evaluate"),
    ("ENOSPC inside torch.save becomes an internal error", "hemcli/fileio.py",
     "            raise write_failure(recorder.error, what, path) from None", "            raise",
     "tests/test_faults.py::test_a_refused_checkpoint_write_is_one_line_and_leaves_nothing"),
    ("a closed stdout lends its descriptor to the next file", "hemcli/cli/__init__.py",
     "    _guard_streams()\n    sys.exit(main())", "    sys.exit(main())",
     "tests/test_faults.py::test_a_closed_stdout_is_held_by_dev_null_so_no_file_takes_its_descriptor"),
    ("SIGTERM kills without unwinding", "hemcli/cli/output.py",
     "    previous = signal.signal(signal.SIGTERM, terminated)", "    previous = signal.getsignal(signal.SIGTERM)",
     "tests/test_faults.py::test_sigterm_ends_a_run_like_ctrl_c"),
    ("a library's print reaches stdout", "hemcli/cli/output.py",
     "        with contextlib.redirect_stdout(sys.stderr):\n            yield",
     "        if True:\n            yield", "tests/test_faults.py::test_what_a_library_prints_during_a_run_goes_to_stderr"),
    ("hem evaluate opens the unknown sets only while measuring", "hemcli/tasks/evaluate.py",
     '        preflight(item.cfg, data)  # item.cfg["eval"]: what this command measures', "        pass",
     "tests/test_bad_data.py::test_hem_evaluate_opens_the_unknown_sets_before_measuring_any_result"),
    ("a run another sweep holds counts as failed", "hemcli/runs/execute.py",
     '        outcome.update(status="taken", error=" ".join(str(err).split()))',
     '        outcome.update(status="failed", error=" ".join(str(err).split()))',
     "tests/test_faults.py::test_a_run_another_sweep_holds_is_waited_for"),
    ("SI's snapshots left as views of the live weights (Avalanche 0.6 on the CPU)", "hemcli/continual/strategies.py",
     "    copy_si_snapshots()\n    return SynapticIntelligence", "    return SynapticIntelligence",
     "tests/test_continual.py::test_synaptic_intelligence_penalises_on_the_cpu"),
    # issue 25: data validation
    ("a label outside the classes accepted", "hemcli/data/checks.py", "    if bad.size:", "    if False:",
     "tests/test_bad_data.py"),
    ("the evaluation preflight skipped", "hemcli/tasks/classify.py", "    preflight(cfg, data)  #", "    pass  #",
     "tests/test_bad_data.py"),
    ("IDX data longer than its header accepted", "hemcli/data/idx.py", "    if body.size > expected:",
     "    if False:", "tests/test_bad_data.py"),
    ("SVHN's y read unchecked", "hemcli/data/arrays.py",
     "digits = check_labels(digits, num_classes, path, low=1) % num_classes",
     "digits = digits.astype(np.int64) % num_classes", "tests/test_bad_data.py"),
    ("ImageNet-LT's two lists label each on their own", "hemcli/data/loaders.py",
     'imagenet_lt(base, "test", classes=classes)', 'imagenet_lt(base, "test")', "tests/test_bad_data.py"),
    ("MNIST-C files checked only when a set is read", "hemcli/data/corruptions/released.py",
     "    for name in names:\n        _mnist_c_arrays(folder / name, size)\n", "", "tests/test_bad_data.py"),
    ("the unknown sets read before training are read again", "hemcli/evaluation/suite.py",
     'found = getattr(data, "real_unknown", None)', "found = None", "tests/test_bad_data.py"),
    # issue 16: continual learning
    ("forgetting from the diagonal, not the best earlier accuracy", "hemcli/metrics/forgetting.py",
     "max(matrix[i][j] for i in range(j, steps - 1))", "matrix[j][j]", "tests/test_continual_metrics.py"),
    ("the loss sees only the current experience's counts", "hemcli/continual/hooks.py", "        self.seen += ",
     "        self.seen = ", "tests/test_continual.py::test_the_loss_gets_the_class_counts_seen_so_far"),
    ("the class order ignores the seed", "hemcli/continual/benchmarks.py",
     "generator=torch.Generator().manual_seed(seed)).tolist()", "generator=torch.Generator().manual_seed(0)).tolist()",
     "tests/test_continual.py"),
    ("resume trains every experience again", "hemcli/continual/loop.py", "        if index < start:",
     "        if False:", "tests/test_continual.py::test_a_run_killed_after_an_experience_resumes_at_the_next"),
    ("final accuracy unweighted by test size", "hemcli/metrics/forgetting.py",
     "sum(acc * n for acc, n in zip(matrix[-1], test_sizes)) / sum(test_sizes)",
     "sum(matrix[-1]) / len(matrix[-1])", "tests/test_continual_metrics.py"),
    # issue 15: long-tailed training
    ("hem evaluate measures a longtail run on the whole set", "hemcli/tasks/evaluate.py",
     "            if factor is not None and not isinstance(data, StreamData):", "            if False:",
     "tests/test_longtail.py::test_hem_evaluate_measures_a_longtail_run_on_its_own_subset"),
    ("long-tail counts rounded, not floored", "hemcli/data/longtail.py",
     "math.floor(count * factor ** j + ROUNDING_SLACK)", "round(count * factor ** j)", "tests/test_longtail_data.py"),
    ("few-shot bound inclusive", "hemcli/data/longtail.py", 'else "few" if count < FEW_BELOW else',
     'else "few" if count <= FEW_BELOW else', "tests/test_longtail_data.py"),
    ("oversampling ignored", "hemcli/engine/batches.py", "    if not balanced:\n        return torch.randperm",
     "    if True:\n        return torch.randperm", "tests/test_batches.py tests/test_longtail.py"),
    # issue 14: datasets, recipes, data-parallel training
    ("DDP shares weighted alike", "hemcli/engine/batches.py", "        return (end - start) * self.world / n",
     "        return 1.0", "tests/test_batches.py tests/test_distributed.py"),
    ("rank sums not summed", "hemcli/engine/distributed.py", "        torch.distributed.all_reduce(values)",
     "        pass", "tests/test_distributed.py::test_two_processes_learn_what_one_learns_and_only_rank0_writes"),
    ("linear warm-up", "hemcli/engine/optim.py", 'return sched["warmup_start"] ** (1 - epoch / warmup)',
     'return sched["warmup_start"] + (1 - sched["warmup_start"]) * epoch / warmup',
     "tests/test_engine.py tests/test_recipes_classify.py"),
    ("by_loss ignored", "hemcli/recipes/__init__.py", "        if key not in told:", "        if False:",
     "tests/test_recipes_classify.py"),
    ("a limited set forgets the whole set's class counts", "hemcli/data/sets.py",
     "data.num_classes, data.held_out_x, data.class_counts())", "data.num_classes, data.held_out_x)",
     "tests/test_data.py"),
    ("test images left at 0..255", "hemcli/data/loaders.py", "test_x.float().div_(255)", "test_x.float()",
     "tests/test_data.py"),
    ("pretrained inputs not standardised", "hemcli/models/__init__.py",
     "    model.register_forward_pre_hook(_standardise)", "", "tests/test_archs.py"),
    # the nine of issue 11, "What the tests let through"
    ("HEM backward ignores the upstream gradient", "hemcli/losses/hem_function.py",
     "sample_weight = positive * (grad_loss / n_positive)", "sample_weight = positive * (1.0 / n_positive)",
     "tests/test_losses.py"),
    ("la ignores tau", "hemcli/losses/functional.py",
     "adjustment = (tau * log_prior.to(y.device, y.dtype))", "adjustment = (log_prior.to(y.device, y.dtype))",
     "tests/test_losses.py"),
    ("resume skips restoring the schedule", "hemcli/engine/checkpoint.py",
     'scheduler.load_state_dict(state["scheduler"])', "pass", "tests/test_classify.py"),
    ("a bool is accepted as an int in a recipe", "hemcli/recipes/__init__.py",
     '    if kind == "int":\n        return isinstance(value, int) and not isinstance(value, bool)',
     '    if kind == "int":\n        return isinstance(value, int)', "tests/test_recipes.py"),
    ("train_loss divided by the batch count", "hemcli/engine/loop.py",
     "return loss_total / seen,", "return loss_total / len(sizes),", "tests/test_engine.py"),
    ("checkpoints written in place", "hemcli/engine/checkpoint.py",
     'write_atomic(self.path, lambda handle: torch.save(state, handle), what="checkpoint")',
     "torch.save(state, self.path)", "tests/test_engine.py"),
    ("report's p < 0.001 formatting disabled", "hemcli/report/render.py",
     'text = "<0.001" if summary.p < 0.001 else f"{summary.p:.3f}"', 'text = f"{summary.p:.3f}"',
     "tests/test_report.py"),
    ("crop_flip returns its input", "hemcli/engine/batches.py",
     "    n, _, h, w = x.shape\n    dy, dx, flip", "    return x\n    n, _, h, w = x.shape\n    dy, dx, flip",
     "tests/test_batches.py"),
    ("the loss modules' autocast-off guard removed", "hemcli/losses/modules.py",
     "        with torch.autocast(device_type=logits.device.type, enabled=False):\n"
     "            return self.loss(logits, targets.long())",
     "        return self.loss(logits, targets.long())", "tests/test_losses.py"),
    # this issue's own guards
    ("YAML 1.1 numbers again", "hemcli/values.py",
     "    loader = HemLoader(text)", "    loader = yaml.SafeLoader(text)", "tests/test_values.py"),
    ("duplicate keys accepted", "hemcli/values.py", "            if duplicate:", "            if False:",
     "tests/test_values.py tests/test_recipes.py"),
    ("non-finite numbers accepted", "hemcli/values.py", "    if not math.isfinite(number):", "    if False:",
     "tests/test_recipes.py tests/test_bad_input.py"),
    ("integers out of range accepted", "hemcli/values.py", "    if not low <= value <= high:", "    if False:",
     "tests/test_bad_input.py"),
    ("a folder at the result path found only after training", "hemcli/runs/paths.py",
     "        if target.exists() and not target.is_file():", "        if False:", "tests/test_bad_input.py"),
    ("no lock", "hemcli/runs/execute.py", "    with RunLock(path), _group_stopped():", "    with _group_stopped():",
     "tests/test_cli_processes.py::test_a_second_run_on_the_same_path_is_refused_and_ctrl_c_says_how_to_resume"),
    ("the lock's empty folders kept", "hemcli/runs/lock.py",
     "        self._lock.release()\n        self._remove_created_folders()", "        self._lock.release()",
     "tests/test_runs.py tests/test_classify.py"),
    ("temporary file left after a failed write", "hemcli/fileio.py",
     "        Path(tmp).unlink(missing_ok=True)\n        raise write_failure(err, what, path)",
     "        raise write_failure(err, what, path)",
     "tests/test_runs.py"),
    ("checkpoint contents not checked", "hemcli/engine/checkpoint.py",
     "and all(isinstance(state.get(key), kind) for key, kind in _CHECKPOINT_FIELDS.items())", "and True",
     "tests/test_engine.py tests/test_bad_input.py"),
    ("Ctrl-C hint lost", "hemcli/cli/train.py", "    except KeyboardInterrupt as stop:\n        checkpoint = checkpoint_path",
     "    except ZeroDivisionError as stop:\n        checkpoint = checkpoint_path", "tests/test_classify.py"),
    ("download straight into the data root", "hemcli/data/downloads.py",
     "getattr(tvd, torchvision_cls)(tmp, download=True, **call)",
     "getattr(tvd, torchvision_cls)(str(root), download=True, **call)", "tests/test_data.py"),
    ("cpu:7 accepted", "hemcli/engine/device.py", '(kind != "cuda" or not index.isdigit()', "(not index.isdigit()",
     "tests/test_bad_input.py"),
    ("resume without a checkpoint is silent", "hemcli/engine/loop.py",
     '        warn(f"no checkpoint at', '        0 and warn(f"no checkpoint at', "tests/test_classify.py"),
    ("report counts a file twice", "hemcli/report/reading.py",
     "            found.setdefault(path.resolve(), path)\n\n\ndef load_results",
     "            found.setdefault(path, path)\n\n\ndef load_results", "tests/test_report.py"),
    ("report keeps NaN metrics", "hemcli/report/reading.py",
     "        return is_number(value) and math.isfinite(value)", "        return is_number(value)",
     "tests/test_report.py"),
    ("report overflows on 1e308", "hemcli/report/table.py",
     "scale = math.ldexp(1.0, math.frexp(max(map(abs, values)))[1] - 1) if any(values) else 1.0",
     "scale = 1.0", "tests/test_report.py"),
    # issue 12: conditions and sweeps
    ("the seed is part of the condition", "hemcli/runs/condition.py",
     'RUN_KEYS = ("seed", "device",', 'RUN_KEYS = ("device",', "tests/test_spec.py tests/test_condition.py"),
    ("M=1000.0 is another condition than M=1000", "hemcli/runs/condition.py",
     "    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 63:", "    if False:",
     "tests/test_condition.py tests/test_spec.py"),
    ("the label compares loss parameters with the recipe", "hemcli/runs/condition.py",
     "reference = loss_defaults.get(key[len(LOSS_PARAMS):], _MISSING)", "reference = base.get(key, _MISSING)",
     "tests/test_condition.py"),
    ("a run's command line drops the recipe's foreign loss parameters", "hemcli/runs/spec.py",
     '    return ["--set", f"loss.params={spell_arg(changed)}"]', "    return []", "tests/test_spec.py"),
    ("a grid plans a run twice", "hemcli/runs/sweep/grid.py", "        specs.setdefault(spec.name, spec)",
     "        specs[str(len(specs))] = spec", "tests/test_sweep_grid.py"),
    ("a range runs backwards", "hemcli/runs/sweep/grid.py", "    if last < first:", "    if False:",
     "tests/test_sweep_grid.py"),
    ("a sweep retrains finished runs", "hemcli/runs/execute.py", "        if spec.path.is_file():",
     "        if False:", "tests/test_sweep.py::test_a_rerun_skips_every_finished_run"),
    ("a sweep starts interrupted runs over", "hemcli/runs/execute.py",
     'outcome["resumed"] = checkpoint_path(spec.path).is_file()', 'outcome["resumed"] = False',
     "tests/test_sweep.py::test_killed_with_sigkill_and_run_again_ends_with_the_same_files"),
    ("a worker outlives its killed sweep", "hemcli/runs/sweep/backends/local.py",
     "    _die_with_the_sweep(sweep)\n", "    pass\n",
     "tests/test_sweep.py::test_killed_with_sigkill_and_run_again_ends_with_the_same_files"),
    ("local workers oversubscribe the cores", "hemcli/runs/sweep/backends/local.py",
     "self.threads = options.cpus_per_run or max(1, cpu_count() // self.jobs)",
     "self.threads = options.cpus_per_run or cpu_count()", "tests/test_sweep.py::test_local_workers_split_the_cores"),
    ("report compares with a CE condition of another learning rate", "hemcli/report/table.py",
     "    return tuple(item for item in _condition_key(condition)\n                 if item[0] != LOSS_KEY and not _is_loss_param(item[0]))",
     "    return tuple(item for item in _condition_key(condition)\n                 if item[0] == 'task')",
     "tests/test_report.py"),
    # issue 13: the evaluation suite
    ("evaluation settings made part of the condition", "hemcli/runs/condition.py",
     "if key not in RUN_KEYS and not key.startswith(RUN_PREFIXES)\n", "if key not in RUN_KEYS\n",
     "tests/test_spec.py"),
    ("AUROC counts a tied pair as a loss", "hemcli/metrics/ranking.py",
     "pairs = 2 * int(below.sum()) + int(tied.sum())", "pairs = 2 * int(below.sum())", "tests/test_metrics.py"),
    ("DAR accepts only above the threshold", "hemcli/metrics/rejection.py",
     "accepted = conf >= threshold", "accepted = conf > threshold", "tests/test_metrics.py"),
    ("an attack stage also attacks the images already broken", "hemcli/evaluation/attack.py",
     "index = unbroken.nonzero().flatten()", "index = torch.arange(len(y), device=y.device)",
     "tests/test_attack.py"),
    ("DAR in the result from the clean instead of the adversarial correctness", "hemcli/evaluation/suite.py",
     "adv_correct = adv_logits.argmax(1) == y", "adv_correct = adv_logits.argmax(1) != y",
     "tests/test_evaluate_suite.py"),
    ("corruption cache shared across evaluation seeds", "hemcli/data/corruptions/cache.py",
     'return f"v{VERSION}-seed{seed}-n', 'return f"v{VERSION}-seed0-n', "tests/test_corruptions.py"),
    ("hem evaluate measures before the weights of every file are checked", "hemcli/cli/measure.py",
     "        again.check_all(items, cache)\n", "", "tests/test_evaluate_cli.py::test_one_bad_file_in_a_folder_changes_none_of_the_good_ones"),
]


def run_mutant(name, file, old, new, tests) -> str:
    with tempfile.TemporaryDirectory(prefix="hem-mutant-") as tmp:
        copy = Path(tmp) / "hem"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "results", "__pycache__", ".*cache"))
        source = copy / file
        text = source.read_text()
        if text.count(old) != 1:
            return "STALE (source text not found once)"
        source.write_text(text.replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(copy)}
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                   *tests.split()], cwd=copy, env=env, capture_output=True, text=True,
                                  timeout=MUTANT_TIMEOUT)
        except subprocess.TimeoutExpired:  # a mutant that hangs the suite does not pass it
            return f"caught (its tests did not end within {MUTANT_TIMEOUT} s)"
        if done.returncode == 0:
            return "SURVIVED (tests stayed green)"
        failed = [line.split(" - ")[0] for line in done.stdout.splitlines() if line.startswith("FAILED")]
        return f"caught by {failed[0][7:] if failed else 'an error: ' + done.stdout.splitlines()[-1]}"


def main() -> int:
    chosen = sys.argv[1:]
    survived = 0
    for name, file, old, new, tests in MUTANTS:
        if chosen and not any(word in name for word in chosen):
            continue
        outcome = run_mutant(name, file, old, new, tests)
        survived += not outcome.startswith("caught")
        print(f"{name}: {outcome}", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
