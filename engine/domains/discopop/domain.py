"""The DiscoPOP domain: candidates are preference-optimisation losses.

One candidate = one candidate image (runtime + dpbox trainer + the loss) and two containers:
1. the candidate container runs the validity tests, then trains one policy per (beta, seed)
   with TRL's DPOTrainer and the loss, writing weights to /out;
2. the evaluation container (task image: reward and samplers, no candidate code) samples from
   each trained policy and reports reward and KL to the reference.
The engine turns those raw numbers into the fitness (fitness.py).
"""

from __future__ import annotations

import ast
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.domains import kit
from engine.domains.discopop import baselines, fitness, layers, plots, prompts, static
from engine.domains.discopop.artifacts import ArtifactBuild, ArtifactError, ensure
from engine.domains.discopop.mountable import mountable
from engine.domains.discopop.config import DiscoPopConfig, Setting
from engine.domains.discopop.dpbox.protocol import BoxStatus, CandidateJob, ModelKind, ModelSpec, TrainSpec, run_key
from engine.search.candidate import CandidateFailure, Evaluation, Proposal, Status
from engine.search.domain import CandidateContext, Domain, RunContext
from engine.search.settle import settle_grant
from engine.domains.discopop.results import EvalReport, TrainReport
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.results import copy_result_file, list_result_dir
from engine.sandbox.runner import Mount, Stage
from engine.task_secret import TaskSecret

RESULT_MAX = 4 * 1024 * 1024
WEIGHT_FILES_MAX = 64  # a saved HF model directory holds a handful of files
POLICY_MOUNT, REWARD_MOUNT, DATA_MOUNT, REF_MOUNT = "/models/policy", "/models/reward", "/data", "/ref"


class DiscoPopDomain(Domain):
    name = "discopop"
    config_model = DiscoPopConfig

    def __init__(self, config: DiscoPopConfig):
        super().__init__(config)
        self.config: DiscoPopConfig = config
        self.needs_gateway = config.setting is Setting.JUDGE  # the judge reaches the LLM through the gateway
        self._runtime: str | None = None
        self._task_image: str | None = None
        self._inputs: Path | None = None  # the shared artifact: train/ is a candidate's /in, all of it the evaluator's /ref
        self._mounts: dict[str, Path] = {}  # host dirs of the GPU settings' models and data
        self._base_limits = SandboxLimits()

    # ---- prompts ---------------------------------------------------------------------------
    def system_prompt(self) -> str:
        return prompts.SYSTEM

    def proposal_prompt(self, archive_text: str) -> str:
        return prompts.proposal(self.config, archive_text)

    def reflection_prompts(self) -> list[str]:
        return [prompts.REFLECTION_1, prompts.REFLECTION_2]

    def repair_prompt(self, error: str) -> str:
        return prompts.repair(error)

    # ---- candidates ------------------------------------------------------------------------
    def resource_limits(self, run: RunContext) -> SandboxLimits:
        train, score = (limits.sandbox(run.limits) for limits in (self.config.train_limits, self.config.eval_limits))
        return train.model_copy(update={"cpus": max(train.cpus, score.cpus), "gpus": max(train.gpus, score.gpus),
                                        "memory_bytes": max(train.memory_bytes, score.memory_bytes)})

    def baselines(self) -> list[Proposal]:
        return baselines.baselines()

    def check(self, tree: ast.Module) -> None:
        static.check_loss_code(tree)

    def evaluation_key(self) -> str:
        """What the score depends on; container limits are left out so that raising a timeout
        keeps the cached baseline scores. After `prepare`, the shared artifact's name too: it is
        keyed by the task image and the task secret, which change the reference and its tokens."""
        setting = self.config.model_dump_json(exclude={"train_limits", "eval_limits"})
        return setting if self._inputs is None else f"{setting} artifact={self._inputs.name}"

    def prepare(self, run: RunContext) -> None:
        """Images, then the shared artifact (proxy reference or converted preference data)."""
        self._base_limits = run.limits
        self._runtime = run.images.runtime(self.config.runtime_name)
        self._task_image = run.images.layer(self._runtime, layers.task_files(), kind="discopop-task")
        if self.config.setting is Setting.PROXY:
            self._inputs = self._prepare_proxy(run)
        else:
            self._inputs = self._prepare_hf(run)

    def _prepare_proxy(self, run: RunContext) -> Path:
        """The reference artifact; its token names are keyed by the machine's task secret."""
        spec, secret = self.config.proxy_spec_json(), TaskSecret.load(run.cache_dir)
        command = ["python", "-m", "dpbox.reference", "/out", json.dumps(spec), secret.derive("discopop-vocabulary").hex()]
        build = ArtifactBuild("reference", {**spec, "task_secret": secret.fingerprint}, command)
        return ensure(build, run.cache_dir / "discopop", run.sandbox, self._task_image,
                      self.config.train_limits.sandbox(run.limits))

    def _prepare_hf(self, run: RunContext) -> Path:
        """Resolve models and data to host paths (mounted read-only later); convert the pairs."""
        hf, root = self.config.hf, run.cache_dir / "discopop"
        self._mounts["policy"] = resolve_source(hf.policy_model, root / "hub", "model")
        if self.config.setting is Setting.IMDB:
            self._mounts["reward"] = resolve_source(hf.reward_model or "", root / "hub", "model")
        if self.config.setting is Setting.JUDGE:
            questions = Path(hf.judge_questions or "")
            if not questions.is_file():
                raise ArtifactError(f"hf.judge_questions {questions} is not a file")
            self._mounts["questions"] = questions.resolve()
        source = resolve_source(hf.dataset, root / "hub", "dataset")
        settings = {"source": str(source), "split": hf.dataset_split, "eval_split": hf.eval_dataset_split,
                    "eval_prompts": hf.eval_prompts, "max_pairs": self.config.training.max_pairs}
        request = {**settings, "source": f"{DATA_MOUNT}/{source.name}" if source.is_file() else DATA_MOUNT,
                   "out_dir": "/out"}
        mount = Mount(source.parent if source.is_file() else source, DATA_MOUNT)
        build = ArtifactBuild("hf-data", settings, ["python", "-m", "dpbox.hf_data", json.dumps(request)], (mount,))
        return ensure(build, root, run.sandbox, self._task_image, self.config.eval_limits.sandbox(run.limits))

    def evaluate(self, proposal: Proposal, ctx: CandidateContext) -> Evaluation:
        return self.evaluate_code(proposal.code, ctx)

    def evaluate_code(self, code: str, ctx: CandidateContext, *, validate: bool = True) -> Evaluation:
        """`validate=False` skips the validity tests: only for sanity checks that must train
        deliberately broken losses (a zero or sign-flipped loss) to show they score low."""
        train = self.train_code(code, ctx, validate=validate)
        ctx.stage("evaluate")
        weights = self._collect_weights(ctx.candidate_dir / "train", ctx.candidate_dir / "weights")
        shutil.rmtree(ctx.candidate_dir / "train" / "weights", ignore_errors=True)  # copied: keep one
        scores = self._score(weights, ctx)
        try:
            value, text, detail = fitness.summarise(scores, self.config.betas, self.config.seeds, self.config.kl_coef)
        except fitness.MissingScores as error:
            raise CandidateFailure(Status.FAILED, str(error)) from None
        detail.update(setting=self.config.setting.value, training=train.get("runs", []),
                      timings={**train.get("timings", {}), "threads": train.get("threads")})
        return Evaluation(fitness=value, fitness_text=text, detail=detail)

    # ---- containers ------------------------------------------------------------------------
    @property
    def inputs_dir(self) -> Path:
        """The part of the shared artifact mounted at /in of candidate containers (after `prepare`)."""
        if self._runtime is None or self._inputs is None or self._task_image is None:
            raise RuntimeError("DiscoPopDomain.prepare must run before candidates are evaluated")
        return layers.candidate_inputs(self._inputs)

    def train_code(self, code: str, ctx: CandidateContext, *, validate: bool = True) -> dict[str, Any]:
        """Build the candidate image and run its container (validity tests, then training);
        returns the container's report or raises CandidateFailure."""
        self.inputs_dir  # noqa: B018 - raises when prepare has not run
        ctx.stage("build")
        image = kit.candidate_image(ctx, self._runtime, layers.candidate_files(code), kind="discopop-candidate")
        ctx.stage("train")
        return self._train(image, ctx, validate)

    def job(self, validate: bool = True) -> CandidateJob:
        """The candidate container's job (also used by tests and benchmarks); it crosses the
        boundary as `job.to_json()`."""
        training = self.config.training
        proxy = self.config.setting is Setting.PROXY
        train = TrainSpec(
            betas=self.config.betas, seeds=self.config.seeds, learning_rate=training.learning_rate,
            batch_size=training.batch_size, epochs=training.epochs, max_pairs=training.max_pairs,
            warmup_ratio=training.warmup_ratio, lr_scheduler=training.lr_scheduler.value, bf16=training.bf16,
            gradient_checkpointing=training.gradient_checkpointing, max_length=training.max_length,
            grad_accum=training.grad_accum, use_cpu=self.config.train_limits.gpus == 0, save_weights=True)
        model = ModelSpec(kind=ModelKind.PROXY if proxy else ModelKind.HF, path="/in" if proxy else POLICY_MOUNT,
                          pairs_path="/in/pairs.jsonl")
        return CandidateJob(train=train, model=model, validate=validate, validity_betas=self.config.betas)

    def _model_mounts(self, *names: str) -> list[Mount]:
        targets = {"policy": POLICY_MOUNT, "reward": REWARD_MOUNT, "questions": "/questions.jsonl"}
        return [Mount(self._mounts[name], targets[name]) for name in names if name in self._mounts]

    def _train(self, image: str, ctx: CandidateContext, validate: bool = True) -> dict[str, Any]:
        out = ctx.candidate_dir / "train"
        limits = self.config.train_limits.sandbox(self._base_limits)
        result = kit.run_stage(ctx, image, ["python", "-m", "dpbox.run_candidate", self.job(validate).to_json()],
                               stage=Stage.TRAIN, limits=limits, out_dir=out, in_dir=self.inputs_dir,
                               mounts=self._model_mounts("policy"))
        collected = kit.collect(result, out, "result.json", TrainReport, max_bytes=RESULT_MAX, what="training")
        report = collected.readable()  # the trainer's own word on why it stopped beats its exit
        partial = report.model_dump(mode="json")
        if report.status is BoxStatus.RUNNING:
            raise collected.failure(partial)
        if report.status is BoxStatus.REJECTED:
            raise CandidateFailure(Status.FAILED, report.reason or "validity tests failed", {"validity": report.validity})
        if report.status is BoxStatus.FAILED:
            raise CandidateFailure(Status.FAILED, report.reason or "training failed", {"training": report.runs})
        if not result.ok:
            raise collected.failure(partial)
        return partial

    def _collect_weights(self, train_out: Path, target: Path) -> Path:
        """Copy only the expected weight files out of the candidate's /out through the result
        reader (no links followed anywhere on the path, caps), so the evaluator's read-only /in
        holds nothing else the candidate wrote."""
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        limit = self.config.train_limits.out_max
        what = "trained weights"
        with kit.result_files():
            for beta in self.config.betas:
                for seed in self.config.seeds:
                    key = run_key(beta, seed)
                    names = ([f"{key}.safetensors"] if self.config.setting is Setting.PROXY else
                             [f"{key}/{name}" for name in list_result_dir(train_out, f"weights/{key}",
                                                                          max_entries=WEIGHT_FILES_MAX, what=what)])
                    for name in names:
                        copy_result_file(train_out, f"weights/{name}", target / name, max_bytes=limit, what=what)
        target.chmod(0o755)
        return target

    def eval_request(self, keys: list[str]) -> dict[str, Any]:
        hf = self.config.hf
        if self.config.setting is Setting.PROXY:
            return {"kind": ModelKind.PROXY.value, "reference_dir": f"{REF_MOUNT}/{layers.ARTIFACT_TRAIN}",
                    "eval_dir": f"{REF_MOUNT}/{layers.ARTIFACT_EVAL}", "weights_dir": "/in", "keys": keys,
                    "proxy": self.config.proxy_spec_json(), "out_dir": "/out"}
        return {"kind": ModelKind.HF.value, "setting": self.config.setting.value, "reference_dir": POLICY_MOUNT, "weights_dir": "/in",
                "keys": keys, "prompts": "/questions.jsonl" if self.config.setting is Setting.JUDGE
                else f"{REF_MOUNT}/{layers.ARTIFACT_EVAL}/eval_prompts.jsonl",
                "reward_dir": REWARD_MOUNT, "reward_label": hf.reward_label, "max_new_tokens": hf.max_new_tokens,
                "batch_size": hf.eval_batch_size, "seed": hf.eval_seed, "bf16": self.config.training.bf16,
                "out_dir": "/out"}

    def _score(self, weights: Path, ctx: CandidateContext) -> dict[str, Any]:
        keys = [run_key(beta, seed) for beta in self.config.betas for seed in self.config.seeds]
        out = ctx.candidate_dir / "eval"
        mounts = [Mount(self._inputs, REF_MOUNT), *self._model_mounts("policy", "reward", "questions")]
        env: dict[str, str] = {}
        grant = None
        if self.config.setting is Setting.JUDGE:
            gateway = ctx.run.gateway
            if gateway is None:
                raise RuntimeError("the judge setting needs the run's LLM gateway")
            grant = gateway.grant(ctx.candidate_id, transcript=ctx.candidate_dir / "judge.jsonl",
                                  max_calls=self.config.hf.judge_max_calls, max_tokens=self.config.hf.judge_max_tokens)
            mounts.append(grant.mount)
            env.update(grant.env)
        try:
            result = kit.run_stage(ctx, self._task_image, ["python", "-m", "dpbox.evaluate", json.dumps(self.eval_request(keys))],
                                   stage=Stage.SCORE, limits=self.config.eval_limits.sandbox(self._base_limits),
                                   out_dir=out, in_dir=weights, mounts=mounts, env=env)
        finally:
            if grant is not None:
                ctx.run.gateway.revoke(grant.token)
        if grant is not None:  # the judge's outage, or the run's budget spent, is not the policy's failure
            settle_grant(ctx.run.gateway, grant.token)
        # The evaluator holds no candidate code, but it runs the candidate's trained policy: a
        # timeout, OOM or crash of that container is the policy's doing. Docker breaking raises
        # from sandbox.run instead, and an outage of the judge is settled with the grant above.
        report = kit.collect(result, out, "eval.json", EvalReport, max_bytes=RESULT_MAX,
                             what="evaluation of the trained policy").require()
        return {key: score.model_dump(exclude_none=True) for key, score in report.scores.items()}

    def report_extras(self, archive: list[Mapping[str, Any]], out_dir: Path) -> list[Path]:
        return plots.render(archive, out_dir)


def resolve_source(value: str, cache: Path, repo_type: str) -> Path:
    """A local path, or a hub id downloaded on the host (containers have no network); either
    made mountable (a hub snapshot's symlinks point outside it: mountable.py)."""
    path = Path(value).expanduser()
    if path.exists():
        return mountable(path.resolve(), cache)
    try:
        from huggingface_hub import snapshot_download  # noqa: PLC0415 - only the GPU settings need it
    except ImportError:
        raise ArtifactError(f"{value!r} is not a local path, and huggingface_hub is not installed to fetch it") from None
    return mountable(Path(snapshot_download(value, repo_type=repo_type, cache_dir=str(cache))), cache)
