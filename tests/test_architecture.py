"""The layers: docs/architecture.md draws the order that `.importlinter` enforces, and covers all of rl_math."""

import configparser
import re
from pathlib import Path

import rl_math

REPO = Path(__file__).resolve().parents[1]


def contract(name: str) -> configparser.SectionProxy:
    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    return config[f"importlinter:contract:{name}"]


def contract_layers() -> list[list[str]]:
    """The layers contract of .importlinter, top to bottom; siblings (`|` or `:`) share a layer."""
    lines = [line.strip() for line in contract("layers")["layers"].splitlines() if line.strip()]
    return [sorted(part.strip() for part in re.split(r"[|:]", line)) for line in lines]


def documented_layers() -> list[list[str]]:
    """The `rl_math.*` names of the diagram between the layers markers of docs/architecture.md, in order."""
    text = (REPO / "docs" / "architecture.md").read_text()
    block = text.split("<!-- layers:", 1)[1].split("<!-- /layers -->", 1)[0]
    layers = []
    for line in block.splitlines():
        names = re.findall(r"rl_math(?:\.\w+)+", line.split("  ")[0] if "|" not in line else line[:40])
        if names:
            layers.append(sorted(names))
    return layers


def test_the_architecture_page_draws_the_contracts_layer_order():
    assert documented_layers() == contract_layers()


def test_the_contract_covers_every_module_of_rl_math():
    root = Path(rl_math.__file__).parent
    top_level = {f"rl_math.{path.stem}" for path in root.glob("*.py") if path.stem != "__init__"}
    top_level |= {f"rl_math.{path.parent.name}" for path in root.glob("*/__init__.py")}
    layered = {name for layer in contract_layers() for name in layer}
    assert top_level == layered

