"""The domains, and the only place that turns a domain's name into its class: a third domain is
one new package plus one line in REGISTRY.

The CLI resolves the domain here and hands the class down: `engine.search` never imports this
package (it sits below the domains)."""

from __future__ import annotations

import importlib

from engine.search.domain import Domain

# name -> "module:Class", imported on demand so one domain's heavy imports never slow another.
REGISTRY: dict[str, str] = {
    "adas": "engine.domains.adas.domain:AdasDomain",
    "discopop": "engine.domains.discopop.domain:DiscoPopDomain",
}


def resolve_domain(spec: str) -> type[Domain]:
    """A registered domain name (`adas`) or an importable `module:Class` (a domain kept outside
    this repository), with a clear error otherwise."""
    if ":" not in spec:
        try:
            spec_target = REGISTRY[spec]
        except KeyError:
            raise ValueError(f"unknown domain {spec!r}; known: {', '.join(sorted(REGISTRY))}") from None
        module_name, class_name = spec_target.split(":")
        return getattr(importlib.import_module(module_name), class_name)
    module_name, _, class_name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load domain {spec!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Domain)):
        raise ValueError(f"{spec!r} is not a Domain subclass")
    return cls

