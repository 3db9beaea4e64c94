"""Images and hardened runs for untrusted candidate code.

engine (which container engine: DOCKER_HOST, rootless socket, root socket), images (ImageBuilder:
base, runtime, layer), runner (Sandbox.run, RunResult and its Outcome, read_out_file), results
(the one reader of result files; a refused file is a ResultError), limits
(SandboxLimits), outfs (the kernel-capped /out of one run), outcopy (reading /out back,
fd-relative, fail closed), streams (separate stdout/stderr tails), boxinit (PID 1 in every
container: the deadline without the engine), gate (check_tree, check_code; its policy on RestrictedPython
in gate_policy), naming (container names and labels:
run, candidate, stage), owner (the owner process's labels and liveness), reaper (leftovers of
dead owners, the run lock), gpu (GpuLeaser), uids
(lease_uid), seccomp (the profile every container runs under). Its commands
(`evobox sandbox`, `evobox images`) are in engine/cli/sandbox.py.
Everything talks to Docker through docker-py; nothing is ever pulled.
"""
