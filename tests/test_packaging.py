"""What a user gets without the repository: a light command line, the shipped example configs,
and one line naming the extra a command needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from losskit._extras import EXTRAS
from losskit.train.config import example_configs, load_config

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_importing_the_cli_and_building_its_parser_loads_no_torch():
    out = _python(
        "import sys, losskit.cli; losskit.cli.build_parser(); heavy = "
        "('torch', 'pydantic', 'matplotlib', 'sklearn'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_example_configs_ship_in_the_package_and_load_by_name():
    assert set(example_configs()) == {
        "ce", "proxy_anchor", "combined_05", "combined_07", "focal_proxy_combined",
    }  # fmt: skip
    assert load_config("combined_07").lambda_combined == 0.7
    assert load_config("combined_07.yaml").lambda_combined == 0.7
    with pytest.raises(FileNotFoundError, match="did you mean 'combined_07'"):
        load_config("combined_7")


def test_list_configs(capsys):
    from losskit.cli import main

    assert main(["train", "--list-configs"]) == 0
    assert "combined_07           Example 4 of the loss guide" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("command", "extra", "module"),
    [
        ("train", "train", "pydantic"),
        ("evaluate", "train", "sklearn"),
        ("plot", "plot", "matplotlib"),
    ],
)
def test_a_command_without_its_extra_names_it(command, extra, module):
    out = _python(
        f"import sys; sys.modules[{module!r}] = None\n"
        "from losskit.cli import main\n"
        f"sys.exit(main([{command!r}, '--config', 'combined_07', '--epochs', '1']))"
    )
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f'losskit {command}: error: needs the "{extra}" extra (missing: {module}); '
        f'install it with: pip install "losskit[{extra}]"'
    )


def test_pyproject_core_dependencies_and_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert [d.split(">")[0] for d in project["dependencies"]] == ["torch", "numpy"]
    extras = project["optional-dependencies"]
    import_name = {"scikit-learn": "sklearn", "pyyaml": "yaml"}
    for extra, modules in EXTRAS.items():
        names = {import_name.get(n, n) for n in (d.split(">")[0] for d in extras[extra])}
        assert names == set(modules), extra
    assert extras["all"] == ["losskit[train,plot]"]


def test_unknown_family_is_an_error_with_a_suggestion(capsys):
    from losskit.cli import main

    assert main(["list", "--family", "regresion"]) == 2
    assert "did you mean 'regression'?" in capsys.readouterr().err
