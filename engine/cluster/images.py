"""Images on every node without a registry: the head records how each image was made (a recipe),
each node builds it from that recipe with its own Docker engine, and verifies what it got.

The head's domain prepares with `RecipeImages`, a wrapper of the head's ImageBuilder that
records, for every tag it returns, the recipe: the base, a runtime (its name and the files of its
recipe folder, as the head read them: sandbox_images/<name>/ or a domain's own folder), or a
layer (parent recipe, files, kind, labels). A node never looks an image up by a name the head
sent: `materialize` builds (or finds) it from the recipe, then checks the hashes:

- runtime: the recipe files travel, the node writes them to a folder of its own and builds from
  it; the tag is the hash of the node's base content id and those files (computed on the node);
- layer (the candidate's code): never looked up by tag; it is built every time the node first
  needs it, and Docker's build cache, keyed by the files' content, makes that a lookup only when
  an identical layer exists (an image planted under the tag is not used);
- every image is then used by its Docker content id (sha256:...), so a tag re-pointed later
  cannot swap what a container runs.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.sandbox.errors import SandboxError
from engine.sandbox.images import ImageBuilder, _recipe_files, _safe_relpath as safe_relpath


class ImageMismatch(SandboxError):
    """A node's image does not match its recipe (or the node's evobox differs from the head's)."""


@dataclass(frozen=True)
class ImageRecipe:
    """How one image is made; the same recipe makes the same image on any node."""

    tier: Literal["base", "runtime", "layer"]
    name: str = ""  # runtime: evobox/runtime-<name>
    parent: ImageRecipe | None = None
    files: tuple[tuple[str, bytes], ...] = ()
    kind: str = ""
    labels: tuple[tuple[str, str], ...] = field(default=())

    def key(self) -> str:
        """Content hash of the recipe: the node caches what it built by this."""
        digest = hashlib.sha256(f"{self.tier}\0{self.name}\0{self.kind}\0".encode())
        digest.update(repr(self.labels).encode())
        for path, data in self.files:
            digest.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
        if self.parent is not None:
            digest.update(self.parent.key().encode())
        return digest.hexdigest()


def runtime_recipe(name: str, recipe: Path | None = None) -> ImageRecipe:
    return ImageRecipe("runtime", name=name, files=tuple(sorted(_recipe_files(name, recipe).items())))


class RecipeImages:
    """The head's ImageBuilder, recording the recipe of every image it hands out."""

    def __init__(self, builder: ImageBuilder):
        self._builder = builder
        self._recipes: dict[str, ImageRecipe] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # exists, image_id, base_tag, runtime_tag: plain lookups
        return getattr(self._builder, name)

    def _keep(self, tag: str, recipe: ImageRecipe) -> str:
        with self._lock:
            self._recipes[tag] = recipe
        return tag

    def base(self) -> str:
        return self._keep(self._builder.base(), ImageRecipe("base"))

    def runtime(self, name: str, *, recipe: Path | None = None) -> str:
        return self._keep(self._builder.runtime(name, recipe=recipe), runtime_recipe(name, recipe))

    def layer(self, parent: str, files: Mapping[str, bytes], *, kind: str, labels: Mapping[str, str] = {}) -> str:
        recipe = layer_recipe(self.recipe_of(parent), files, kind, labels)
        return self._keep(self._builder.layer(parent, files, kind=kind, labels=labels), recipe)

    def recipe_of(self, tag: str) -> ImageRecipe:
        """The recipe of an image this builder made; a node cannot rebuild any other."""
        with self._lock:
            recipe = self._recipes.get(tag)
        if recipe is None:
            raise SandboxError(f"image {tag} was not built through the run's image builder; a Ray node "
                               "cannot rebuild it (domains build every image with run.images)")
        return recipe


def layer_recipe(parent: ImageRecipe, files: Mapping[str, bytes], kind: str, labels: Mapping[str, str]) -> ImageRecipe:
    return ImageRecipe("layer", parent=parent, files=tuple(sorted(files.items())), kind=kind,
                       labels=tuple(sorted(labels.items())))


def materialize(builder: ImageBuilder, recipe: ImageRecipe) -> tuple[str, str]:
    """Build or find the recipe's image on this node; (tag, content id) once verified."""
    if recipe.tier == "base":
        tag = builder.base()
        if tag != builder.base_tag():
            raise ImageMismatch(f"base image {tag} is not the one this node's recipe names")
        return tag, builder.image_id(tag)
    if recipe.tier == "runtime":
        with tempfile.TemporaryDirectory(prefix=f"evobox-recipe-{recipe.name}-") as folder:
            for rel, data in recipe.files:
                path = Path(folder) / safe_relpath(rel)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            base = builder.base()
            tag = builder.runtime(recipe.name, recipe=Path(folder))
            if tag != builder.runtime_tag(recipe.name, base, recipe=Path(folder)):
                raise ImageMismatch(f"runtime {recipe.name}: {tag} is not the hash of its recipe on this node")
        return tag, builder.image_id(tag)
    assert recipe.parent is not None
    _, parent_id = materialize(builder, recipe.parent)
    labels = dict(recipe.labels)
    tag = builder.layer(parent_id, dict(recipe.files), kind=recipe.kind, labels=labels, verify=True)
    return tag, builder.image_id(tag)
