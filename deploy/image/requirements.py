"""Print the requirements of this distribution's base install plus the named extras, one a line.

The image installs its dependencies in a layer of their own, before the code is copied, so a code
change rebuilds one small layer instead of reinstalling numba and scipy. That layer may only see
pyproject.toml, hence this reader instead of `pip install .[extra]`. A self-reference such as
`video-str-reward[service]` inside an extra is followed. Standard library only (tomllib: 3.11+).

    python3 requirements.py service          # base + [service], from ./pyproject.toml
    python3 requirements.py trainer vllm     # base + [trainer] + [vllm]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

_SELF = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)\[(?P<extras>[^\]]+)\]\s*$")


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    out: list[str] = list(project["dependencies"])
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop(0)
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"no extra [{extra}] in {pyproject}")
        seen.add(extra)
        for req in optional[extra]:
            own = _SELF.match(req)
            if own and own["name"] == project["name"]:
                todo.extend(e.strip() for e in own["extras"].split(","))
            elif req not in out:
                out.append(req)
    return out


if __name__ == "__main__":
    print("\n".join(requirements(Path("pyproject.toml"), sys.argv[1:])))
