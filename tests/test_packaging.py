"""The two descriptions of the environment (pyproject.toml for pip, environment.yml for conda)
must list the same packages."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        pip_names |= {_name(r) for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_names = {_name(r) for r in pip_section if not r.startswith("-e")}
    assert conda_names == pip_names


def test_torch_pin_is_the_same_everywhere():
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"TORCH_VERSION := (\S+)", makefile).group(1)
    assert f"torch=={pinned}" in (ROOT / "environment.yml").read_text()
    assert "torch==$(TORCH_VERSION)" in makefile
