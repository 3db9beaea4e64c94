"""Images and hardened runs for untrusted candidate code.

images (ImageBuilder: base, runtime, layer), runner (Sandbox.run, read_out_file), limits
(SandboxLimits), gate (check_code), reaper (run liveness, leftovers), gpu (GpuLeaser), cli
(sandbox_app, images_app). Everything talks to Docker through docker-py; nothing is ever pulled.
"""
