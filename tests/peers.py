"""Reference loss implementations taken from peer libraries' wheels, for tests only.

timm, segmentation_models_pytorch and lightly are not installed beside this project's torch
pin, but their loss files are plain PyTorch. :func:`load` downloads the pinned wheel once
(``pip download --no-deps`` into ``.peers/`` at the repository root, git-ignored), extracts
only the files it needs under a private package root and imports the module from there. The
package ``__init__`` files are replaced by empty ones so that nothing else of the library is
imported. A test that needs a peer calls :func:`load` and is skipped when the wheel cannot be
fetched (no network).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent / ".peers"

# wheel spec -> the files a test may import from it (module file and its package-internal helpers)
PINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "timm": (
        "timm==1.0.15",
        ("timm/loss/asymmetric_loss.py", "timm/loss/jsd.py", "timm/loss/cross_entropy.py"),
    ),
    "segmentation_models_pytorch": (
        "segmentation_models_pytorch==0.5.0",
        tuple(
            f"segmentation_models_pytorch/losses/{name}.py"
            for name in ("constants", "_functional", "lovasz", "jaccard", "mcc", "dice", "tversky")
        ),
    ),
    "lightly": (
        "lightly==1.5.20",
        (
            "lightly/utils/dist.py",
            "lightly/loss/barlow_twins_loss.py",
            "lightly/loss/vicreg_loss.py",
            "lightly/loss/negative_cosine_similarity.py",
            "lightly/loss/dcl_loss.py",
        ),
    ),
}


def _wheel(package: str) -> Path:
    spec = PINS[package][0]
    name, version = spec.split("==")
    cached = sorted(ROOT.glob(f"{name}-{version}-*.whl"))
    if cached:
        return cached[0]
    ROOT.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", spec, "-d", str(ROOT)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return sorted(ROOT.glob(f"{name}-{version}-*.whl"))[0]


def _extract(package: str) -> Path:
    """Extract the package's listed files (with empty package ``__init__`` files) not yet there."""
    src = ROOT / f"src-{PINS[package][0].replace('==', '-')}"
    missing = [member for member in PINS[package][1] if not (src / member).exists()]
    if missing:
        with zipfile.ZipFile(_wheel(package)) as wheel:
            for member in missing:
                target = src / member
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(wheel.read(member))
                for parent in Path(member).parents:
                    if parent != Path("."):
                        (src / parent / "__init__.py").touch()
    return src


def fetch(package: str) -> Path:
    """Download and extract ``package``'s wheel (what ``make peers`` runs before the tests)."""
    return _extract(package)


def load(package: str, module: str) -> ModuleType:
    """Import ``module`` (e.g. ``"timm.loss.jsd"``) from the pinned wheel, or skip the test."""
    try:
        src = _extract(package)
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"peer wheel {PINS[package][0]} unavailable: {err}")
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))
    return importlib.import_module(module)


if __name__ == "__main__":
    for name in PINS:
        print(fetch(name))
