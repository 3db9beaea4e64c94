"""Domain registry: a third domain is one new package plus one line here."""

from __future__ import annotations

import importlib

from engine.search.domain import Domain

# name -> "module:Class", imported on demand so one domain's heavy imports never slow another.
REGISTRY: dict[str, str] = {
    "adas": "engine.domains.adas.domain:AdasDomain",
    "discopop": "engine.domains.discopop.domain:DiscoPopDomain",
}


def load_domain_class(name: str) -> type[Domain]:
    """Return the Domain subclass registered under `name`, with a clear error otherwise."""
    try:
        target = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown domain {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)
