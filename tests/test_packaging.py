"""What `import parewire` says when it cannot work: torch missing, or a
source tree whose _C is missing or was built for another Python.

Each case runs in a child interpreter.  A copy of the package's .py files in
a scratch folder plays the source tree; setuptools' editable-install finder
is removed from sys.meta_path there, since it would otherwise supply the _C
of the editable install the test environment may have.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import parewire

NO_EDITABLE = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]; "
)


def import_error(code: str, cwd: Path | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert out.returncode != 0, "the import succeeded"
    return out.stderr.strip().splitlines()[-1]


def test_without_torch_the_import_says_to_install_the_platform_build_first():
    last = import_error("import sys; sys.modules['torch'] = None; import parewire")
    assert last.startswith("ImportError: parewire needs PyTorch")
    assert "build for your platform first" in last and "large CUDA build" in last
    assert "circular import" not in last


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    package = tmp_path / "parewire"
    package.mkdir()
    for f in Path(parewire.__file__).parent.glob("*.py"):
        shutil.copy(f, package)
    return tmp_path


def test_a_source_tree_without_c_extension_says_to_build_it(source_tree: Path):
    last = import_error(NO_EDITABLE + "import parewire", cwd=source_tree)
    assert last.startswith("ImportError: parewire's C extension parewire._C is not built in")
    assert "python setup.py build_ext --inplace" in last and "circular import" not in last


def test_an_extension_built_for_another_python_is_named(source_tree: Path):
    other = "_C.cpython-27-x86_64-linux-gnu.so"  # no CPython 3 loads this name
    (source_tree / "parewire" / other).write_bytes(b"")
    last = import_error(NO_EDITABLE + "import parewire", cwd=source_tree)
    assert f"({other}) was built for another Python" in last
    assert f"CPython {sys.version_info.major}.{sys.version_info.minor} loads" in last
