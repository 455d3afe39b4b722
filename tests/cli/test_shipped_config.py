"""`kubernaut run` from an installed package (issue 13, section 4): the package ships serve_config.yaml and uses it
when no file is given, and the environment can move what the shipped file leaves to defaults (the data dir)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from kubernaut import cli
from kubernaut.config import load_config

REPO = Path(__file__).resolve().parents[2]


def shipped_args() -> dict:
    (app,) = [a for a in yaml.safe_load(cli.shipped_config().read_text())["applications"] if a["name"] == "kubernaut"]
    return app["args"]


def test_the_package_ships_the_repository_serve_config() -> None:
    shipped = cli.shipped_config()
    assert shipped.is_file() and shipped.parent == Path(cli.__file__).parent
    assert shipped.read_bytes() == (REPO / "serve_config.yaml").read_bytes()
    # package data: the pattern that puts it into wheels (pyproject.toml) covers it
    (package_data,) = [line for line in (REPO / "pyproject.toml").read_text().splitlines()
                       if line.startswith('"kubernaut" = [')]
    assert '"**/*.yaml"' in package_data


def test_kubernaut_run_without_a_file_serves_the_shipped_config(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # as an installed package: no serve_config.yaml in the current directory
    for name, value in {"RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0",
                        "RAY_AUTH_MODE": "disabled", "RAY_SERVE_LOG_TO_STDERR": "1"}.items():
        monkeypatch.setenv(name, value)  # restored afterwards; cmd_run only sets what is unset
    executed: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda path, argv: executed.append(argv))
    assert cli.main(["run"]) == 0
    (argv,) = executed
    assert argv[-2:] == ["run", str(cli.shipped_config())]
    # An explicit file still wins, and a missing one is an error naming it.
    own = tmp_path / "mine.yaml"
    own.write_text("applications: []\n")
    assert cli.main(["run", str(own)]) == 0 and executed[-1][-2:] == ["run", str(own)]
    assert cli.main(["run", str(tmp_path / "missing.yaml")]) == 2


def test_the_environment_moves_the_data_dir_of_the_shipped_config(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An arg in serve_config.yaml outranks KUBERNAUT_* (kubernaut.config.settings): the shipped file must not set
    the data dir, or KUBERNAUT_STORAGE__DATA_DIR would do nothing."""
    monkeypatch.delenv("KUBERNAUT_STORAGE__DATA_DIR", raising=False)
    assert load_config(shipped_args()).storage.data_dir == (Path.home() / ".kubernaut" / "data").resolve()
    monkeypatch.setenv("KUBERNAUT_STORAGE__DATA_DIR", str(tmp_path / "elsewhere"))
    assert load_config(shipped_args()).storage.data_dir == tmp_path / "elsewhere"
