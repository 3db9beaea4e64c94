"""The Ray executor: each evaluation reserves resources on a Ray node and runs its containers there.

Per evaluation: a placement group of one bundle (CPU, GPU, memory: the [executor] request, by
default the run's [sandbox] limits) is created and Ray places it on a node with those resources
free, so a DiscoPOP training goes only where its GPUs are free. The domain's `evaluate` then
runs here, on the head, as with the local executor, but its RunContext holds a `NodeSandbox`
and `NodeImages` bound to that node's `NodeAgent` (engine/cluster/agent.py): every container
stage runs on the node, while the gateway grants, the transcripts, the budgets and the scoring
stay on the head. The reservation is released when the evaluation ends, however it ends.

A node lost mid-evaluation (its agent died, or it did not answer) raises `NodeLost`, an
infrastructure error: the loop retries the evaluation (placed again, on a live node) and after
the last try leaves the candidate pending for resume. Nothing of it was archived: records are
written by the loop on the head only once an evaluation returned.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
import ray.exceptions
import structlog
from ray._private.authentication.authentication_utils import is_token_auth_enabled
from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from engine.cluster.agent import LLM_MOUNT, TREE_MOUNT, NodeAgent
from engine.config import ExecutorConfig
from engine.cluster.images import ImageRecipe, RecipeImages, layer_recipe, runtime_recipe
from engine.cluster.relay import GatewayBridge
from engine.cluster.wire import pack, tree_digest, tree_signature, unpack
from engine.llm.httpserver import ServerLimits
from engine.sandbox.errors import SandboxError
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.naming import ContainerSpec, Stage
from engine.sandbox.runner import Mount, RunResult
from engine.search.candidate import Evaluation, Proposal
from engine.search.domain import CandidateContext, Domain, RunContext

log = structlog.get_logger()

_CALL_TIMEOUT_S = 600.0  # an agent call that is not a container run (image build included)
_RUN_SLACK_S = 3600.0  # on top of a container's own timeout: a first image build on a fresh node
_AGENT_CONCURRENCY = 64


class NodeLost(SandboxError):
    """A node (its agent) died or stopped answering during an evaluation: retried elsewhere."""


class PlacementTimeout(SandboxError):
    """No node had the evaluation's resources free within placement_timeout_s."""


class RayExecutor:
    """`with RayExecutor(config, run) as ex:` connects to the cluster; `ex.head_run` is what the
    domain is prepared with (its images are recorded as recipes for the nodes)."""

    def __init__(self, config: ExecutorConfig, run: RunContext):
        self.config = config
        self.images = RecipeImages(run.images)
        self.head_run = replace(run, images=self.images)
        self._agents: dict[str, Any] = {}
        self._trees: dict[tuple[str, str], str] = {}  # (node, digest) shipped
        self._digests: dict[str, tuple[Any, str]] = {}  # source -> (signature, digest)
        self._lock = threading.Lock()
        self._bridge: Any = None
        self._head_node = ""

    # ---- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> RayExecutor:
        ray.init(address=self.config.address or "auto", namespace="evobox", log_to_driver=False,
                 logging_level="WARNING", configure_logging=False)
        if not is_token_auth_enabled():
            ray.shutdown()
            raise SandboxError("the Ray cluster is used without token authentication: anyone who reaches its "
                               "ports could run code on every node (start it with RAY_AUTH_MODE=token, the "
                               "default from Ray 2.59, and give evobox RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)")
        self._head_node = ray.get_runtime_context().get_node_id()
        gateway = self.head_run.gateway
        if gateway is not None:
            affinity = NodeAffinitySchedulingStrategy(self._head_node, soft=False)
            c = gateway.config
            self._bridge = ray.remote(GatewayBridge).options(num_cpus=0, scheduling_strategy=affinity).remote(
                str(gateway.socket_path), min(gateway.max_concurrency, c.max_connections_per_peer), c.upstream_timeout_s + 30)
            ray.get(self._bridge.ready.remote(), timeout=_CALL_TIMEOUT_S)
        nodes = [n for n in ray.nodes() if n["Alive"]]
        log.info("cluster.connected", nodes=len(nodes), head=self._head_node[:12],
                 resources=ray.cluster_resources())
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every agent (its containers and files on its node), then leave the cluster."""
        if not ray.is_initialized():
            return
        with self._lock:
            agents, self._agents = dict(self._agents), {}
        closing = [agent.close.remote() for agent in agents.values()]
        for node, ref in zip(agents, closing):
            try:
                ray.get(ref, timeout=60)
            except ray.exceptions.RayError as exc:
                log.warning("cluster.agent_close_failed", node=node[:12], error=f"{type(exc).__name__}: {exc}")
        for actor in [*agents.values(), *([self._bridge] if self._bridge is not None else [])]:
            ray.kill(actor)
        ray.shutdown()

    # ---- the seam ------------------------------------------------------------------------
    def evaluate(self, domain: Domain, proposal: Proposal, ctx: CandidateContext) -> Evaluation:
        """domain.evaluate with the containers on the node Ray placed this evaluation on."""
        bundle = self._bundle(domain.resource_limits(ctx.run))
        group = placement_group([bundle], strategy="STRICT_PACK")
        node = ""
        try:
            try:
                ray.get(group.ready(), timeout=self.config.placement_timeout_s)
            except ray.exceptions.GetTimeoutError:
                raise PlacementTimeout(f"no node had {bundle} free within "
                                       f"{self.config.placement_timeout_s:g}s") from None
            node = placement_group_table(group)["bundles_to_node_id"][0]
            ctx.log.info("cluster.placed", node=node[:12])
            session = NodeSession(self, node, self._agent(node))
            run = replace(ctx.run, sandbox=session.sandbox, images=session.images)
            return domain.evaluate(proposal, replace(ctx, run=run))
        except NodeLost:
            self._forget(node)
            raise
        finally:
            remove_placement_group(group)

    def _bundle(self, limits: SandboxLimits) -> dict[str, float]:
        c = self.config
        bundle = {"CPU": c.num_cpus if c.num_cpus is not None else limits.cpus,
                  "GPU": c.num_gpus if c.num_gpus is not None else float(limits.gpus),
                  "memory": float(c.memory_bytes if c.memory_bytes is not None else limits.memory_bytes)}
        bundle.update(c.resources)
        return {name: amount for name, amount in bundle.items() if amount > 0} or {"CPU": 0.01}

    # ---- agents --------------------------------------------------------------------------
    def _agent(self, node: str) -> Any:
        with self._lock:
            agent = self._agents.get(node)
            if agent is None:
                agent = self._start_agent(node)
                self._agents[node] = agent
            return agent

    def _start_agent(self, node: str) -> Any:
        gateway = self.head_run.gateway
        c = gateway.config if gateway is not None else None
        limits = ServerLimits() if c is None else ServerLimits(
            header_timeout_s=c.header_timeout_s, idle_timeout_s=c.idle_timeout_s, body_timeout_s=c.body_timeout_s,
            write_timeout_s=c.write_timeout_s, max_header_bytes=c.max_header_bytes,
            max_body_bytes=c.max_request_bytes, max_connections=c.max_connections,
            max_connections_per_peer=c.max_connections_per_peer)
        actor = ray.remote(NodeAgent).options(
            num_cpus=0, max_concurrency=_AGENT_CONCURRENCY, max_restarts=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
        agent = actor.remote(self.head_run.run_id, node, self._bridge, limits, self.config.wire_max_bytes,
                             self.config.mount_max_bytes)
        info = call(agent, node, "info")
        log.info("cluster.agent_started", node=node[:12], pid=info["pid"])
        return agent

    def _forget(self, node: str) -> None:
        """A lost node's agent is dropped; a node that comes back gets a fresh one."""
        with self._lock:
            agent = self._agents.pop(node, None)
            self._trees = {key: d for key, d in self._trees.items() if key[0] != node}
        if agent is not None:
            ray.kill(agent)
        log.warning("cluster.node_lost", node=node[:12])

    def ship_tree(self, node: str, agent: Any, source: Path) -> str:
        """The content digest of a read-only input tree, shipped to `node` once."""
        source = source.resolve()
        signature = tree_signature(source)
        with self._lock:
            known = self._digests.get(str(source))
        digest = known[1] if known and known[0] == signature else tree_digest(source)
        with self._lock:
            self._digests[str(source)] = (signature, digest)
            shipped = (node, digest) in self._trees
        if not shipped:
            if not call(agent, node, "has_tree", digest):
                data = ray.put(pack(source, self.config.mount_max_bytes))
                call(agent, node, "put_tree", digest, data)
            with self._lock:
                self._trees[(node, digest)] = digest
        return digest


def call(agent: Any, node: str, method: str, *args: Any, timeout: float = _CALL_TIMEOUT_S) -> Any:
    """One agent call; an error raised on the node is raised here as itself, a dead or silent
    node as NodeLost."""
    try:
        return ray.get(getattr(agent, method).remote(*args), timeout=timeout)
    except ray.exceptions.RayTaskError as exc:
        raise exc.as_instanceof_cause() from None
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError, ray.exceptions.ObjectLostError,
            ray.exceptions.OwnerDiedError) as exc:
        raise NodeLost(f"node {node[:12]} was lost during {method}: {type(exc).__name__}") from exc


class NodeSession:
    """One evaluation's view of its node: a sandbox and an image builder for the domain's code."""

    def __init__(self, executor: RayExecutor, node: str, agent: Any):
        self.executor, self.node, self.agent = executor, node, agent
        self.recipes: dict[str, ImageRecipe] = {}
        self.sandbox = NodeSandbox(self)
        self.images = NodeImages(self)

    def recipe_of(self, image: str) -> ImageRecipe:
        return self.recipes.get(image) or self.executor.images.recipe_of(image)

    def materialize(self, recipe: ImageRecipe) -> str:
        tag, _ = call(self.agent, self.node, "materialize", recipe, timeout=_RUN_SLACK_S)
        self.recipes[tag] = recipe
        return tag


class NodeImages:
    """The ImageBuilder calls a domain makes during an evaluation, answered by the node."""

    def __init__(self, session: NodeSession):
        self._session = session

    def base(self) -> str:
        return self._session.materialize(ImageRecipe("base"))

    def runtime(self, name: str, *, recipe: Path | None = None) -> str:
        return self._session.materialize(runtime_recipe(name, recipe))

    def layer(self, parent: str, files: Mapping[str, bytes], *, kind: str, labels: Mapping[str, str] = {}) -> str:
        return self._session.materialize(layer_recipe(self._session.recipe_of(parent), files, kind, labels))


class NodeSandbox:
    """The Sandbox calls a domain makes during an evaluation, run on the node by its agent."""

    live_inputs = False  # /in is shipped to the node once, at the container's start

    def __init__(self, session: NodeSession):
        self._session = session

    @property
    def run_id(self) -> str:
        return self._session.executor.head_run.run_id

    def work(self, stage: Stage, candidate_id: str | None = None) -> ContainerSpec:
        s = self._session
        return call(s.agent, s.node, "work", stage, candidate_id)

    def run(self, image: str, command: list[str], *, limits: SandboxLimits = SandboxLimits(),
            out_dir: Path | None = None, in_dir: Path | None = None, mounts: Sequence[Mount] = (),
            env: Mapping[str, str] = {}, labels: Mapping[str, str] = {}, stage: Stage = Stage.EXEC,
            candidate_id: str | None = None) -> RunResult:
        """Sandbox.run on the node: /in shipped there, /out shipped back; the gateway's socket dir
        becomes the node's relay, any other (read-only) mount a tree shipped by content hash."""
        s = self._session
        wire = s.executor.config.wire_max_bytes
        in_tar = pack(in_dir, wire) if in_dir is not None else None
        specs = [self._mount_spec(m) for m in mounts]
        result, out_tar = call(s.agent, s.node, "run", s.recipe_of(image), list(command), limits, in_tar,
                               out_dir is not None, specs, dict(env), dict(labels), stage, candidate_id,
                               timeout=limits.timeout_s + _RUN_SLACK_S)
        if out_dir is not None:
            if out_tar is None:
                shutil.rmtree(out_dir, ignore_errors=True)
                out_dir.mkdir(parents=True)
            else:
                unpack(out_tar, out_dir, wire)
            result.out_dir = out_dir
        return result

    def _mount_spec(self, mount: Mount) -> tuple[str, str, str]:
        s = self._session
        gateway = s.executor.head_run.gateway
        source = Path(mount.source).resolve()
        if gateway is not None and source == gateway.socket_dir.resolve():
            return (LLM_MOUNT, "", mount.target)
        if not mount.read_only:
            raise SandboxError(f"a writable mount ({mount.source}) cannot be given to a container on a Ray node")
        return (TREE_MOUNT, s.executor.ship_tree(s.node, s.agent, source), mount.target)

    def close(self) -> None:
        """The node's sandbox is the agent's; closed with the executor."""

