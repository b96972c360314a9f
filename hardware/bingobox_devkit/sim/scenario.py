"""Scenario files: YAML lists of steps, each ``{action: {args}}`` or ``{wait: seconds}``.

    name: a shopper takes a drink
    steps:
      - tags.set: {reader: shelf-1, epcs: [E20000000000000000000001]}
      - camera.show: {camera: door-cam, qr: "hello"}
      - wait: 0.5
      - door.open: {door: entrance}

Relative ``image`` paths are resolved against the scenario file's folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


class ScenarioError(ValueError):
    pass


def load_scenario(path: str | Path) -> tuple[str, list[tuple[str, dict]]]:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ScenarioError(f"{path}: cannot read scenario: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise ScenarioError(f"{path}: a scenario is a mapping with a 'steps' list")
    unknown = set(doc) - {"name", "steps", "description"}
    if unknown:
        raise ScenarioError(f"{path}: unknown keys {sorted(unknown)}")
    steps: list[tuple[str, dict]] = []
    for i, step in enumerate(doc["steps"]):
        if not isinstance(step, dict) or len(step) != 1:
            raise ScenarioError(f"{path}: step {i + 1} must be a one-key mapping like {{door.open: {{door: x}}}}")
        (action, args), = step.items()
        if action == "wait":
            if not isinstance(args, int | float) or not 0 <= args <= 3600:
                raise ScenarioError(f"{path}: step {i + 1}: wait takes seconds (0..3600)")
            steps.append(("wait", {"seconds": float(args)}))
            continue
        args = dict(args or {})
        if not isinstance(args, dict):
            raise ScenarioError(f"{path}: step {i + 1}: arguments must be a mapping")
        if isinstance(args.get("image"), str) and not Path(args["image"]).is_absolute():
            args["image"] = str((path.parent / args["image"]).resolve())
        steps.append((str(action), args))
    return str(doc.get("name", path.stem)), steps


def run_steps(steps: list[tuple[str, dict]], act: Callable[..., Any],
              log: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> int:
    """Run the steps through ``act(action, **args)``; returns the number of actions done."""
    done = 0
    for action, args in steps:
        if action == "wait":
            sleep(args["seconds"])
            continue
        act(action, **args)
        done += 1
        log(f"{action} {' '.join(f'{k}={v}' for k, v in args.items())}")
    return done
