"""Child process hosting the llama.cpp server (xllamacpp) for EmbeddedServer.

Run as `python -m engine.llm.llama_child --model PATH --port N ...`. It serves on 127.0.0.1
only and exits when its stdin reaches EOF, i.e. when the engine closes the pipe or dies.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ctx-size", type=int, default=8192, help="context of each slot")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--alias", required=True)
    args = parser.parse_args(argv)

    import xllamacpp  # imported here: loading the native library is only needed in this process

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    # llama.cpp splits n_ctx between the slots: each slot gets the whole --ctx-size. Slots are
    # decoded together (continuous batching), and each keeps its last prompt's KV cache, which a
    # request with the same prefix (the next reflection round of a conversation) reuses.
    params.n_ctx = args.ctx_size * args.parallel
    params.n_parallel = args.parallel
    params.cont_batching = True
    params.cache_prompt = True
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.model_alias = {args.alias}
    server = xllamacpp.Server(params)
    print(f"listening on {server.listening_address}", flush=True)
    sys.stdin.read()  # blocks until the parent closes the pipe or exits
    del server


if __name__ == "__main__":
    main()
