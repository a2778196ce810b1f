"""The top-level layout a user is told to fill: dataset/README.md names what the readers look for."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_dataset_readme_describes_every_benchmark_folder_and_file():
    from safeeraser.specificity import BENCHMARKS, builtin_data_root

    text = (REPO / "dataset" / "README.md").read_text()
    for name in ("all_train.json", "all_val.json", "prompt.json", "specificity/"):
        assert name in text
    for bench in BENCHMARKS.values():
        assert f"{bench.folder_names[0]}/" in text, bench.name
    # Every annotation/question file the builtin fixtures hold (the runnable example of the layout).
    for path in builtin_data_root().rglob("*"):
        if path.suffix in (".json", ".jsonl", ".tsv"):
            # POPE's three splits are written as one brace pattern.
            assert (path.name if not path.name.startswith("coco_pope_") else "coco_pope_{") in text, path.name


def test_readme_says_to_activate_the_venv_before_its_first_bare_command():
    """The README's set-up commands name .venv/bin/; it then says every later command (here and in the
    guides, which use bare `python`, `safeeraser`, `accelerate`) runs in that environment."""
    lines = (REPO / "README.md").read_text().splitlines()
    activate = next(i for i, line in enumerate(lines) if "source .venv/bin/activate" in line)
    in_block, bare = False, []
    for i, line in enumerate(lines):
        if line.startswith("```"):
            in_block = not in_block
        elif in_block and line.split()[:1] in (["python"], ["safeeraser"], ["accelerate"]):
            bare.append(i)
    assert all(activate < i for i in bare)
    guides = [doc for doc in documents()[1:] if re.search(r"^(python|safeeraser|accelerate) ", doc.read_text(), re.M)]
    assert guides, "no guide shows a bare command: this test checks nothing"


# --- the README's commands ------------------------------------------------------------------------
# Every ```bash block of README.md, command by command: the scripts, config files, `safeeraser`
# subcommands, flags (and their listed choices) and training-config keys it names exist, checked
# through the parsers and config loader the commands use. No command is run: they need the benchmark,
# models and GPUs.

ENTRY_PARSERS = {  # a script or subcommand -> the module whose build_parser() parses its flags
    "ckpt_infer.py": "safeeraser.infer.ckpt_infer", "infer": "safeeraser.infer.ckpt_infer",
    "eval_all.py": "safeeraser.eval.command", "eval": "safeeraser.eval.command",
    "specificity": "safeeraser.specificity.command", "judge-agreement": "safeeraser.eval.agreement",
    "bench": "safeeraser.bench.command", "attack": "safeeraser.attacks.run",
    "report": "safeeraser.pipeline.html_report",
}
# scripts that hand their key=value arguments to forget.py (with forget_lora.yaml by default)
FORGET_SCRIPTS = ("scripts/forget_lora.bash", "scripts/forget_grid.bash")


def readme_commands(text: str | None = None) -> list[tuple[int, int, list[str]]]:
    """(block number, README line, tokens) of every command in a ```bash block: continuation lines
    joined, comments dropped, optional parts `[--flag a|b]` unbracketed."""
    import shlex

    commands, block, in_block, pending, start = [], 0, False, "", 0
    text = (REPO / "README.md").read_text() if text is None else text
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_block = line.strip() == "```bash"
            block += in_block
            continue
        if not in_block:
            continue
        code = line.split(" # ")[0].rstrip() if not line.lstrip().startswith("#") else ""
        start = start or number
        if code.endswith("\\"):
            pending += code[:-1] + " "
            continue
        command = re.sub(r"(^|\s)\[", r"\1 ", pending + code)  # `[--flag X]` optional parts, not `".[train]"`
        command = re.sub(r"\](\s|$)", r" \1", command)
        pending = ""
        for part in command.split("&&"):
            if part.strip():
                commands.append((block, start, shlex.split(part)))
        start = 0
    return commands


def _flags(parser) -> dict:
    return dict(parser._option_string_actions)


def _subcommands() -> dict:
    """Every `safeeraser` subcommand -> its parser (the top-level one's subparser, or its own)."""
    import argparse

    from safeeraser.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _check_flags(parser, args: list[str], where: str) -> None:
    import argparse

    subs = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
    options = _flags(parser)
    for i, arg in enumerate(args):
        if arg in subs:  # `safeeraser specificity score ...`: the rest are the subcommand's
            return _check_flags(subs[arg], args[i + 1:], where)
        if not arg.startswith("--"):
            continue
        flag = arg.split("=")[0]
        assert flag in options, f"{where}: {flag} is not a flag of {parser.prog}"
        action = options[flag]
        if action.choices and i + 1 < len(args) and "|" in args[i + 1]:  # choices the README lists
            listed = set(args[i + 1].split("|"))
            assert listed <= set(action.choices), f"{where}: {flag} has no choice {listed - set(action.choices)}"


def _check_forget_args(args: list[str], where: str, default: str = "forget_lora.yaml") -> None:
    """forget.py's --config-name and key=value overrides: the config exists and every key is one."""
    from safeeraser.train.config import load_config

    config = default
    if "--config-name" in args:
        config = args[args.index("--config-name") + 1]
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    load_config(config, overrides, validate_paths=False)  # ConfigError names an unknown key or value


def _check_command(tokens: list[str], where: str) -> None:
    import importlib

    while tokens and "=" in tokens[0] and not tokens[0].startswith("-"):  # VAR=value before the command
        name, value = tokens.pop(0).split("=", 1)
        if value.startswith("config/"):
            assert (REPO / value).is_file(), f"{where}: {name}={value}: no such file"
    program, args = tokens[0], tokens[1:]
    if program.endswith("python") and args[:2] == ["-m", "pip"]:
        program, args = "pip", args[2:]
    for arg in args:  # every file under config/ or scripts/ that a command names
        if arg.startswith(("config/", "scripts/")):
            assert (REPO / arg).is_file(), f"{where}: {arg}: no such file"
    if program.startswith("scripts/"):  # a script run by its path
        assert (REPO / program).is_file(), f"{where}: {program}: no such script"
    elif program == "bash":
        script = args[0]
        assert (REPO / script).is_file(), f"{where}: {script}: no such script"
        if script in FORGET_SCRIPTS:
            _check_forget_args(args[1:], where)
    elif program.endswith("pip"):  # `pip install -e ".[extra]"`: setup.py has that extra
        setup = (REPO / "setup.py").read_text()
        extras = set(re.findall(r'"([\w-]+)": \[', setup[setup.index("extras_require"):]))
        for arg in args:
            for extra in re.findall(r"\[([\w,-]+)\]$", arg.replace(" ", "")):
                assert set(extra.split(",")) <= extras, f"{where}: {arg}: setup.py's extras are {sorted(extras)}"
    elif program == "accelerate":
        assert args[0] == "launch", where
        config = args[args.index("--config_file") + 1]
        assert (REPO / config).is_file(), f"{where}: {config}: no such accelerate config"
        script = next(a for a in args if a.endswith(".py"))
        _check_command(["python", *args[args.index(script):]], where)
    elif program.endswith("python"):
        if args[:2] == ["-m", "pytest"]:
            rest = args[2:]  # the paths, past options and the values of those that take one (-n 2)
            paths = [a for i, a in enumerate(rest) if not a.startswith("-") and not (i and rest[i - 1] == "-n")]
            assert paths and all((REPO / a).exists() for a in paths), where
            return
        script = args[0]
        assert (REPO / script).is_file(), f"{where}: {script}: no such script"
        if script == "forget.py":
            _check_forget_args(args[1:], where)
        else:
            _check_flags(importlib.import_module(ENTRY_PARSERS[script]).build_parser(), args[1:], where)
    elif program.endswith("safeeraser"):
        name = args[0]
        subcommands = _subcommands()
        assert name in subcommands, f"{where}: `safeeraser {name}`: no such subcommand"
        if name in ENTRY_PARSERS:
            _check_flags(importlib.import_module(ENTRY_PARSERS[name]).build_parser(), args[1:], where)
        else:
            _check_flags(subcommands[name], args[1:], where)
            if name == "run":
                from safeeraser.pipeline.experiment import load_experiment

                load_experiment(args[args.index("--config") + 1])
    elif program in OTHER_TOOLS or program in SHELL_BUILTINS:  # another package's command, or the shell's
        pass
    else:
        raise AssertionError(f"{where}: a command this test does not know: {program}")


OTHER_TOOLS = {"tensorboard", "git"}
SHELL_BUILTINS = {"wait", "export", "cd", "source"}


def documents() -> list[Path]:
    """The README and the documentation's pages: every command they show is checked."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def test_every_documented_command_names_scripts_configs_subcommands_and_flags_that_exist():
    total = 0
    for doc in documents():
        commands = readme_commands(doc.read_text())
        total += len(commands)
        for block, line, tokens in commands:
            _check_command(list(tokens), f"{doc.relative_to(REPO)} line {line}")
    assert total >= 15


def test_readme_lists_every_safeeraser_subcommand():
    text = (REPO / "README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `safeeraser` (console command)"))
    listed = set(re.findall(r"`([a-z-]+)`", row.split("|")[2]))
    assert listed == set(_subcommands()), f"README's table lists {sorted(listed)}"


# Each script's default accelerate config (its ACCELERATE_CONFIG default).
SCRIPT_LAUNCH_DEFAULTS = {"scripts/forget_lora.bash": "config/accelerate_config.yaml",
                          "scripts/forget_grid.bash": "config/accelerate/multi_gpu.yaml"}


def test_readme_states_the_train_extra_where_a_command_launches_deepspeed():
    """A launch on a DeepSpeed accelerate config fails on the default install: the block says `.[train]`."""
    from safeeraser.train.deepspeed_check import config_wants_deepspeed

    found = 0
    for doc in documents():
        text = doc.read_text()
        lines = text.splitlines()
        blocks: dict[int, list[int]] = {}
        for block, line, tokens in readme_commands(text):
            named = [t.split("=", 1)[-1] for t in tokens if t.split("=", 1)[-1].startswith("config/")]
            scripts = [t for t in tokens if t in SCRIPT_LAUNCH_DEFAULTS]
            if scripts and not any(t.startswith("ACCELERATE_CONFIG=") for t in tokens):
                named.append(SCRIPT_LAUNCH_DEFAULTS[scripts[0]])  # the script's default launch config
            if any(config_wants_deepspeed(REPO / c) for c in named if c.startswith("config/accelerate")):
                blocks.setdefault(block, []).append(line)
        found += len(blocks)
        for block, at in blocks.items():
            opening = max(i for i in range(at[0]) if lines[i].startswith("```"))
            closing = next(i for i in range(at[0], len(lines)) if lines[i].startswith("```"))
            nearby = "\n".join(lines[max(0, opening - 3):closing])
            assert '".[train]"' in nearby, f"{doc.name} line {at[0]}: launches DeepSpeed without naming the train extra"
    assert found, "no documented command launches DeepSpeed: update this test"


def test_a_deepspeed_launch_without_the_train_extra_is_one_line_naming_it(capsys):
    """accelerate's launcher raises an ImportError traceback for a DeepSpeed config when DeepSpeed is missing;
    the check scripts run first, and forget.py in a process launched with DeepSpeed asked for, say it in one line."""
    import importlib.util
    import os
    import subprocess
    import sys

    import pytest

    from safeeraser.train import deepspeed_check

    if importlib.util.find_spec("deepspeed") is not None:
        pytest.skip("DeepSpeed is installed here")
    assert deepspeed_check.main([str(REPO / "config" / "accelerate_config.yaml")]) == 2
    assert '".[train]"' in capsys.readouterr().err
    assert deepspeed_check.main([str(REPO / "config" / "accelerate" / "multi_gpu.yaml")]) == 0
    env = {**os.environ, "ACCELERATE_USE_DEEPSPEED": "true"}
    run = subprocess.run([sys.executable, "forget.py", "--config-name", "forget_tiny.yaml"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr[-2000:]
    assert '".[train]"' in run.stderr and "Traceback" not in run.stderr


def test_the_timed_list_of_the_suites_old_tests_names_tests_that_exist():
    """README's Tests paragraph times `pytest @tests/suite_of_118345e.txt`, the suite's tests of then under their
    names now: a test renamed or removed must be renamed or removed there too, or that command stops running."""
    import ast

    missing = []
    defined: dict[str, set[str]] = {}
    for line in (REPO / "tests" / "suite_of_118345e.txt").read_text().splitlines():
        path, _, name = line.partition("::")
        if path not in defined:
            file = REPO / path
            tree = ast.parse(file.read_text()) if file.is_file() else ast.Module(body=[], type_ignores=[])
            defined[path] = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if name.split("[", 1)[0] not in defined[path]:
            missing.append(line)
    assert not missing, missing[:5]
