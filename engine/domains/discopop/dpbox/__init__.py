"""Code that runs inside DiscoPOP containers (never imported by the engine process).

Two images are built from these modules: the candidate image (loss loader, validity tests,
trainer) and the task image (reference builder, reward, evaluator). The reward and the
evaluator are never copied into a candidate image, so a candidate cannot read or call them.
Imports are relative so the package works both as `dpbox` in a container and in place.
"""
