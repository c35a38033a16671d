"""JSON merge patch (RFC 7396), for the device's settings object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`target` with `patch` applied (neither is changed): a null removes a key, an object
    merges into the object under its key (a non-object there is replaced by it), any other
    value replaces the key's."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            below = result.get(key)
            result[key] = merge_patch(below if isinstance(below, Mapping) else {}, value)
        else:
            result[key] = value
    return result
