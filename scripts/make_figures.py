"""Regenerate the documentation's example figure and table from the command line.

    python scripts/make_figures.py

runs ``parewire resnet18 --seed 0 --plot docs/img/resnet18_strengths.png``
(the command the docs show), writes the PNG, and puts the table it prints
into ``docs/reports.md`` between the ``make_figures`` markers.  Needs
torchvision and matplotlib; takes about 10 s.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURE = os.path.join("docs", "img", "resnet18_strengths.png")
PAGE = os.path.join(ROOT, "docs", "reports.md")
COMMAND = ["resnet18", "--seed", "0", "--plot", FIGURE]
BLOCK = re.compile(r"(<!-- make_figures: resnet18 table -->\n```text\n).*?(```\n)", re.S)


def main() -> int:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-m", "parewire", *COMMAND], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        return out.returncode
    table = f"$ parewire {' '.join(COMMAND)}\n{out.stdout}"
    with open(PAGE, encoding="utf-8") as f:
        page = f.read()
    page, n = BLOCK.subn(lambda m: m.group(1) + table + m.group(2), page)
    if n != 1:
        sys.stderr.write(f"{PAGE}: expected one make_figures block, found {n}\n")
        return 1
    with open(PAGE, "w", encoding="utf-8") as f:
        f.write(page)
    print(f"wrote {FIGURE} and the table in {os.path.relpath(PAGE, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
