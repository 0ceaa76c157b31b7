"""A rule chosen by name from a config key (peak ties, peak gradient, peak point)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

Rule = TypeVar('Rule')


def named_rule(rules: Mapping[str, Rule], key: str, name: str) -> Rule:
    """``rules[name]``, or a ValueError naming the key and its choices (a typo in a
    config fails when the model is built, not at its first step)."""
    if name not in rules:
        raise ValueError(f'Unknown {key} {name!r}; choose one of {sorted(rules)}')
    return rules[name]
