"""Checks the sdist and wheel that `python -m build` made (scripts/check_dist.sh).

usage: check_dist.py DIST_DIR REPO_ROOT

- exactly one sdist, parewire-<version>.tar.gz, and one wheel tagged
  cp39-abi3 (one wheel for every CPython from 3.9 on);
- the wheel holds the package's modules, _C (abi3), its stub, py.typed, the
  license and metadata, and nothing else (no sources, no tests);
- the sdist holds every tracked file the build, the tests and the C checks
  need (csrc/, parewire/, tests/ with tests/data, scripts/), and no build
  products;
- the metadata states the license (BSD-3-Clause), Python >= 3.9, and the
  dependencies.
Exits 1 with one line per problem.
"""

from __future__ import annotations

import email.parser
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

NEEDED_IN_SDIST = ("csrc/", "parewire/", "tests/", "scripts/")
TOP_FILES = {"LICENSE", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in", "Makefile", "requirements-ci.txt"}
BUILD_PRODUCTS = (".so", ".pyd", ".o", ".pyc")


def main(dist: Path, root: Path) -> list[str]:
    problems = []
    sdists, wheels = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        return [f"expected one sdist and one wheel in {dist}, found {[p.name for p in sdists + wheels]}"]
    sdist, wheel = sdists[0], wheels[0]
    name, version, py_tag, abi_tag, platform = wheel.name[: -len(".whl")].split("-")
    if (name, py_tag, abi_tag) != ("parewire", "cp39", "abi3"):
        problems.append(f"wheel {wheel.name}: expected parewire-<version>-cp39-abi3-<platform>.whl")
    if sdist.name != f"parewire-{version}.tar.gz":
        problems.append(f"sdist {sdist.name} does not match the wheel's version {version}")

    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    modules = {f for f in tracked if f.startswith("parewire/")}

    with zipfile.ZipFile(wheel) as z:
        files = set(z.namelist())
        info = f"parewire-{version}.dist-info/"
        meta = email.parser.Parser().parsestr(z.read(info + "METADATA").decode())
        wheel_info = z.read(info + "WHEEL").decode()
    extension = {f for f in files if f.startswith("parewire/_C.")} - {"parewire/_C.pyi"}
    if extension != {"parewire/_C.abi3.so"} and not (platform.startswith("win") and extension == {"parewire/_C.pyd"}):
        problems.append(f"wheel: expected the extension as parewire/_C.abi3.so, found {sorted(extension)}")
    expected = (
        modules
        | extension
        | {info + f for f in ("METADATA", "WHEEL", "RECORD", "entry_points.txt", "top_level.txt", "licenses/LICENSE")}
    )
    for f in sorted(expected - files):
        problems.append(f"wheel lacks {f}")
    for f in sorted(files - expected):
        problems.append(f"wheel has an unexpected file {f}")
    if f"Tag: cp39-abi3-{platform}" not in wheel_info or "Root-Is-Purelib: false" not in wheel_info:
        problems.append(f"wheel: WHEEL file does not say Tag: cp39-abi3-{platform}, Root-Is-Purelib: false")
    if meta["License-Expression"] != "BSD-3-Clause" or "LICENSE" not in (meta.get_all("License-File") or []):
        problems.append("metadata: License-Expression BSD-3-Clause and License-File LICENSE expected")
    if meta["Requires-Python"] != ">=3.9":
        problems.append(f"metadata: Requires-Python is {meta['Requires-Python']!r}")
    requires = {r.split(">")[0].split("=")[0].strip() for r in meta.get_all("Requires-Dist") or [] if "extra" not in r}
    if requires != {"numpy", "torch"}:
        problems.append(f"metadata: Requires-Dist (without extras) is {sorted(requires)}")

    with tarfile.open(sdist) as t:
        prefix = f"parewire-{version}/"
        members = {m.name[len(prefix) :] for m in t.getmembers() if m.isfile()}
    needed = {f for f in tracked if f.startswith(NEEDED_IN_SDIST)} | TOP_FILES
    for f in sorted(needed - members):
        problems.append(f"sdist lacks {f}")
    for f in sorted(m for m in members if m.endswith(BUILD_PRODUCTS) or "__pycache__" in m):
        problems.append(f"sdist has a build product {f}")
    if not any(f.startswith("tests/data/") and f.endswith(".npz") for f in members):
        problems.append("sdist has no tests/data/*.npz")
    return problems


if __name__ == "__main__":
    found = main(Path(sys.argv[1]), Path(sys.argv[2]))
    for p in found:
        print(f"check_dist: {p}")
    sys.exit(1 if found else 0)
