"""Move rl_math's flat modules into the package layout and rewrite every reference to them.

    python scripts/relayout.py           # git mv what is still in an old place, rewrite the text files
    python scripts/relayout.py --check   # only list the files that would change; exit 1 if any would

Run it from anywhere inside the repository. It is idempotent: a second run changes nothing. It is
meant for code written against the flat layout on other branches: after merging such a branch,
run it (it moves a new flat module it knows, e.g. `dynamic_sampling.py` → `train/`, and rewrites
`rl_math.<old>` imports, `mock.patch("rl_math.<old>.x")` strings, `module:function` paths,
`src/rl_math/<old>.py` and `tests/test_<old>.py` paths in every tracked text file), then:

    ruff check --fix .       # the import order the rewrite changed (the config is in pyproject.toml)
    ruff check .             # what remains is reviewed by hand
    python -m pytest -q

A merge conflict inside an import block (this branch's last commit sorted the imports) is
resolved by keeping the other branch's lines (not this branch's): this script and `ruff check --fix .` then
rewrite and sort them. Tried on main's dynamic sampling commit (c18dc69): two such conflicts
(recipes/grpo.py, config.py), then the script moved dynamic_sampling.py and its test, and
tests/train/test_dynamic_sampling.py passed.

What it cannot do: git follows a moved file (a merged branch's edit to plotting.py lands in
tools/curves.py), but not a function that the split moved to a new module (`SYMBOL_MOVES`, e.g.
`message_text` → tools/samples.py): such an edit conflicts in the old file's new home; carry it
over by hand. A module imported as an object (`from rl_math import evaluation`, then
`evaluation.plot_evaluation`) is rewritten to the module's new home; an attribute of it that moved
elsewhere in the split is not.

The ruff fixes (the last commit of the layout branch) were made with exactly these commands:

    ruff check --fix .   # imports sorted (I001), annotations unquoted (UP037), an unused import (F401)
    ruff check .         # the rest by hand: E402 (benchmarks/reward_throughput.py: constants below the
                         # imports), B007 (tools/curves.py: unused loop names), B028 (an explicit stacklevel)
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

# old flat module (under rl_math) → its new module
MODULE_MOVES = {
    "training": "train.lifecycle",
    "generation": "train.generation",
    "sft_data": "train.sft_data",
    "expert_iteration": "train.expert_iteration",
    "health": "train.health",
    "group_signal": "train.group_signal",
    "preemption": "train.preemption",
    "dynamic_sampling": "train.dynamic_sampling",
    "evaluation": "eval.evaluate",
    "in_run_eval": "eval.in_run",
    "plotting": "tools.curves",
    "memory_plan": "tools.memory_plan",
    "tiny": "testing.tiny_model",
    "grader": "rewards.grader",
    "rewards": "rewards.functions",
    # moved on the tasks branch (tasks own their data, golds and prompt formats)
    "data": "tasks.loading",
    "prompts": "tasks.formats",
    "gsm8k": "tasks.gsm8k",
    "synthetic": "tasks.arithmetic",
}

# names that left their old module in the split: old module → {name: new module}
SYMBOL_MOVES = {
    "evaluation": {name: "eval.figures" for name in ("plot_evaluation", "MODEL_COLORS", "BUCKET_COLORS")},
    "generation": {name: "train.export" for name in ("save_for_generation", "add_stop_tokens")},
    "plotting": {
        name: "tools.samples"
        for name in (
            "find_completions", "message_text", "prompt_tail", "shorten", "print_samples",
            "SAMPLE_FIXED_COLUMNS", "WIDE_TABLE_COLUMNS",
        )
    },
    "tiny": {name: "testing" for name in ("resolve_model_path", "is_test_model")},
}

# renamed names (old module, old name) → new name; the name is rewritten wherever it is imported
SYMBOL_RENAMES = {("tiny", "resolve_model_path"): "resolve_model"}

# old modules that are now packages, re-exporting the `__all__` of one module: such a name keeps the
# package path in imports and docs (`from rl_math.rewards import get_reward` stays documented)
PACKAGES = {"rewards": "rewards.functions"}

TEST_MOVES = {
    "test_rewards.py": "rewards/test_functions.py",
    "test_rewards_fuzz.py": "rewards/test_functions_fuzz.py",
    "test_reward_hacking.py": "rewards/test_reward_hacking.py",
    "test_grader.py": "rewards/test_grader.py",
    "test_training.py": "train/test_lifecycle.py",
    "test_quiet_runs.py": "train/test_quiet_runs.py",
    "test_generation.py": "train/test_generation.py",
    "test_sft_data.py": "train/test_sft_data.py",
    "test_expert_iteration.py": "train/test_expert_iteration.py",
    "test_health.py": "train/test_health.py",
    "test_group_signal.py": "train/test_group_signal.py",
    "test_preemption.py": "train/test_preemption.py",
    "test_dynamic_sampling.py": "train/test_dynamic_sampling.py",
    "test_evaluation.py": "eval/test_evaluate.py",
    "test_in_run_eval.py": "eval/test_in_run.py",
    "test_memory_plan.py": "tools/test_memory_plan.py",
    "test_tiny_model.py": "testing/test_tiny_model.py",
}

TEXT_SUFFIXES = {".py", ".md", ".cfg", ".toml", ".yaml", ".yml", ".sh", ".sbatch", ".txt", ".json", ""}
# the mapping itself and its test name the old paths on purpose
NOT_REWRITTEN = {Path("scripts/relayout.py"), Path("tests/test_relayout.py")}


def module_file(module: str) -> str:
    """`train.lifecycle` → `src/rl_math/train/lifecycle.py`.

    >>> module_file("train.lifecycle")
    'src/rl_math/train/lifecycle.py'
    """
    return f"src/rl_math/{module.replace('.', '/')}.py"


def reexported_names(root: Path, package: str) -> set[str]:
    """The `__all__` of the module `package` re-exports (empty when it has none)."""
    module = root / module_file(PACKAGES[package])
    if not module.is_file():
        return set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


class Rewriter:
    """Rewrites the text of one file; `exports` is each package's re-exported names."""

    def __init__(self, exports: dict[str, set[str]], submodules: frozenset[str] = frozenset()):
        self.exports = exports
        self.submodules = submodules  # "package.module" for every module file a package holds now
        old = "|".join(sorted(MODULE_MOVES, key=len, reverse=True))
        self.from_import = re.compile(
            rf"(?P<head>from\s+rl_math\.(?P<old>{old}))(?![\w.])\s+import\s+"
            r"(?P<names>\((?:[^)]*)\)|[^\n#]*?(?:\\\n[^\n#]*?)*)(?P<tail>[ \t]*(?:#[^\n]*)?$)",
            re.M,
        )
        self.from_package = re.compile(r"^(?P<indent>[ \t]*)from\s+rl_math\s+import\s+(?P<names>[^\n#(]+?)[ \t]*$", re.M)
        self.attribute = re.compile(rf"\brl_math\.(?P<old>{old})(?P<sep>[.:])(?P<name>[A-Za-z_]\w*)")
        # a recipe's logger is named after the recipe (`rl_math.expert_iteration`), not a module
        self.bare = re.compile(rf"(?<!getLogger\(\")\brl_math\.(?P<old>{old})(?!\w|[.:]\w)")
        self.path = re.compile(rf"\brl_math/(?P<old>{old})\.py\b")
        tests = "|".join(re.escape(t) for t in sorted(TEST_MOVES, key=len, reverse=True))
        self.test_path = re.compile(rf"\btests/(?P<old>{tests})")

    def target(self, old: str, name: str, *, public_path: bool) -> str:
        """The module (under rl_math) that now holds `name` of the old module `old`."""
        if old in PACKAGES and (name in self.exports.get(old, ()) and public_path or self.is_submodule(old, name)):
            return old
        return SYMBOL_MOVES.get(old, {}).get(name, MODULE_MOVES[old])

    def is_submodule(self, package: str, name: str) -> bool:
        # a module written after the split (rewards/isolation.py) is one too, not a name of the old flat module
        return f"{package}.{name}" in self.submodules or any(new == f"{package}.{name}" for new in MODULE_MOVES.values())

    def rename(self, old: str, name: str) -> str:
        return SYMBOL_RENAMES.get((old, name), name)

    def _from_import(self, match: re.Match) -> str:
        old = match["old"]
        names_text = match["names"]
        parenthesised = names_text.startswith("(")
        inner = names_text.strip("()").replace("\\\n", " ")
        items = [item.strip() for item in re.split(r",", re.sub(r"#[^\n]*", "", inner)) if item.strip()]
        by_module: dict[str, list[str]] = {}
        for item in items:
            name, _, alias = item.partition(" as ")
            name = name.strip()
            module = self.target(old, name, public_path=True)
            new_name = self.rename(old, name)
            entry = f"{new_name} as {alias.strip()}" if alias else new_name
            by_module.setdefault(module, []).append(entry)
        if list(by_module) == [old] and not any(self.rename(old, n.split(" as ")[0]) != n.split(" as ")[0] for n in items):
            return match[0]  # already where it belongs (a package's re-exported names)
        indent = re.match(r"[ \t]*", match.string[match.string.rfind("\n", 0, match.start()) + 1 :])[0]
        lines = []
        for module, names in by_module.items():
            joined = ", ".join(names)
            if parenthesised and len(joined) + len(module) + 20 > 100:
                body = "".join(f"{indent}    {n},\n" for n in names)
                lines.append(f"from rl_math.{module} import (\n{body}{indent})")
            else:
                lines.append(f"from rl_math.{module} import {joined}")
        return f"\n{indent}".join(lines) + match["tail"]

    def _from_package(self, match: re.Match) -> str:
        """`from rl_math import evaluation` → `from rl_math.eval import evaluate as evaluation`."""
        items = [item.strip() for item in match["names"].split(",")]
        if not any(item.split(" as ")[0].strip() in MODULE_MOVES for item in items):
            return match[0]
        kept, lines = [], []
        for item in items:
            name, _, alias = (part.strip() for part in item.partition(" as "))
            if name not in MODULE_MOVES:
                kept.append(item)
                continue
            package, _, leaf = MODULE_MOVES[name].rpartition(".")
            alias = alias or name
            lines.append(f"from rl_math.{package} import {leaf}" + ("" if alias == leaf else f" as {alias}"))
        if kept:
            lines.insert(0, f"from rl_math import {', '.join(kept)}")
        return "\n".join(match["indent"] + line for line in lines)

    def _attribute(self, match: re.Match, markdown: bool) -> str:
        old, name = match["old"], match["name"]
        module = self.target(old, name, public_path=markdown)
        if module == old and match["sep"] == "." and self.is_submodule(old, name):
            return match[0]
        return f"rl_math.{module}{match['sep']}{self.rename(old, name)}"

    def _bare(self, match: re.Match) -> str:
        old = match["old"]
        return f"rl_math.{old}" if old in PACKAGES else f"rl_math.{MODULE_MOVES[old]}"

    def rewrite(self, text: str, markdown: bool = False) -> str:
        renamed = {old_name for (old, old_name) in SYMBOL_RENAMES if re.search(rf"\brl_math\.{old}\b", text)}
        text = self.from_import.sub(self._from_import, text)
        text = self.from_package.sub(self._from_package, text)
        text = self.attribute.sub(lambda m: self._attribute(m, markdown), text)
        text = self.bare.sub(self._bare, text)
        text = self.path.sub(lambda m: f"rl_math/{MODULE_MOVES[m['old']].replace('.', '/')}.py", text)
        text = self.test_path.sub(lambda m: f"tests/{TEST_MOVES[m['old']]}", text)
        for (_, old_name), new_name in SYMBOL_RENAMES.items():
            if old_name in renamed:
                text = re.sub(rf"\b{old_name}\b", new_name, text)
        return text


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


def move_files(root: Path, check: bool) -> list[str]:
    """git mv each old module and test file still in its old place; returns what moved (or would)."""
    moves = [(module_file(old), module_file(new)) for old, new in MODULE_MOVES.items()]
    moves += [(f"tests/{old}", f"tests/{new}") for old, new in TEST_MOVES.items()]
    done = []
    for old, new in moves:
        source, target = root / old, root / new
        if not source.is_file() or target.exists():
            continue
        done.append(f"{old} → {new}")
        if not check:
            target.parent.mkdir(parents=True, exist_ok=True)
            if old.startswith("src/") and not (target.parent / "__init__.py").exists():
                (target.parent / "__init__.py").write_text("")
                git(root, "add", str(target.parent / "__init__.py"))
            git(root, "mv", old, new)
    return done


def rewrite_files(root: Path, check: bool) -> list[str]:
    exports = {package: reexported_names(root, package) for package in PACKAGES}
    submodules = frozenset(
        f"{package}.{path.stem}" for package in PACKAGES for path in (root / "src" / "rl_math" / package).glob("*.py")
    )
    rewriter = Rewriter(exports, submodules)
    changed = []
    for name in git(root, "ls-files", "--cached", "--others", "--exclude-standard").splitlines():
        path = root / name
        if Path(name) in NOT_REWRITTEN or path.suffix not in TEXT_SUFFIXES or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        new = rewriter.rewrite(text, markdown=path.suffix == ".md")
        if new != text:
            changed.append(name)
            if not check:
                path.write_text(new)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything would change")
    args = parser.parse_args(argv)
    root = Path(git(Path.cwd(), "rev-parse", "--show-toplevel").strip())
    moved = move_files(root, args.check)
    for old, new in MODULE_MOVES.items():
        if (root / module_file(old)).is_file() and (root / module_file(new)).is_file():
            # a merged branch re-created a moved module: its changes belong in the new file
            print(f"{module_file(old)} and {module_file(new)} both exist: merge the first into the second by hand")
    changed = rewrite_files(root, args.check)
    for line in moved:
        print(("would move " if args.check else "moved ") + line)
    for name in changed:
        print(("would rewrite " if args.check else "rewrote ") + name)
    if not moved and not changed:
        print("nothing to do: the layout is up to date")
    return 1 if args.check and (moved or changed) else 0


if __name__ == "__main__":
    sys.exit(main())
