"""Engine performance of the LLM layer: prints figures, asserts nothing.

- gateway overhead: one chat call through the gateway's unix socket vs the same call straight to
  the upstream (a scripted OpenAI-compatible server on loopback), sequential, p50/p90 and ratio;
- throughput: calls/s with 32 concurrent clients, through the gateway and direct;
- the embedded model (Qwen2.5-Coder-1.5B Q4_K_M, llama.cpp via xllamacpp): time to first token,
  prompt tokens/s and generation tokens/s, for each thread count asked for.

Goal: the gateway adds < 5 ms p50 per call.
Usage: python -m benchmarks.perf_llm [--calls 300] [--threads 1,2] [--no-embedded]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import httpx

from engine.llm.config import EmbeddedConfig, GatewayConfig
from engine.llm.embedded import EmbeddedServer
from engine.llm.endpoint import Endpoint
from engine.llm.gateway import Gateway
from engine.llm.scripted import ScriptedLLM

BODY = {"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "ping"}]}
CONCURRENT = 32


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latencies(target: dict[str, str], n: int) -> list[float]:
    out = []
    with make_client(target) as client:
        for _ in range(10):  # warm-up: connection set up, caches
            client.post("/v1/chat/completions", json=BODY).raise_for_status()
        for _ in range(n):
            started = time.perf_counter()
            client.post("/v1/chat/completions", json=BODY).raise_for_status()
            out.append(time.perf_counter() - started)
    return out


def make_client(target: dict[str, str]) -> httpx.Client:
    """A client for `target`: {"url": base} direct, or {"uds": path, "token": t} through the gateway."""
    if "uds" in target:
        return httpx.Client(transport=httpx.HTTPTransport(uds=target["uds"]), base_url="http://gateway", timeout=60,
                            headers={"authorization": f"Bearer {target['token']}"})
    return httpx.Client(base_url=target["url"], timeout=60)


def load(target: dict[str, str], per_client: int) -> float:
    """Calls/s of CONCURRENT client threads; run in a separate process, like sandboxed candidates."""
    barrier = threading.Barrier(CONCURRENT + 1)
    errors: list[BaseException] = []

    def worker() -> None:
        with make_client(target) as client:
            barrier.wait()
            try:
                for _ in range(per_client):
                    client.post("/v1/chat/completions", json=BODY).raise_for_status()
            except BaseException as exc:  # reported below, never counted as a success
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed: {errors[0]!r}")
    return CONCURRENT * per_client / elapsed


def throughput(target: dict[str, str], per_client: int) -> float:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(load, target, per_client).result()


def gateway_figures(calls: int) -> None:
    with ScriptedLLM(default="pong", model="gpt-4o-mini") as upstream, tempfile.TemporaryDirectory() as tmp:
        endpoint = Endpoint(upstream.base_url, "sk-bench-0000000000", "gpt-4o-mini")
        config = GatewayConfig(max_concurrency=CONCURRENT)
        with Gateway(endpoint, Path(tmp) / "llm", config=config) as gateway:
            grant = gateway.grant("bench", transcript=Path(tmp) / "t.jsonl", max_calls=10**9, max_tokens=10**12)
            direct = {"url": upstream.base_url.removesuffix("/v1")}
            via = {"uds": str(gateway.socket_path), "token": grant.token}
            d = latencies(direct, calls)
            g = latencies(via, calls)
            overhead = statistics.median(g) - statistics.median(d)
            print(f"gateway overhead ({calls} sequential calls, transcript on):")
            print(f"  direct to upstream : p50 {statistics.median(d) * 1e3:6.2f} ms   p90 {pct(d, 0.9) * 1e3:6.2f} ms")
            print(f"  through gateway    : p50 {statistics.median(g) * 1e3:6.2f} ms   p90 {pct(g, 0.9) * 1e3:6.2f} ms")
            print(f"  added by gateway   : p50 {overhead * 1e3:6.2f} ms   ratio {statistics.median(g) / statistics.median(d):.2f}x"
                  f"   (goal < 5 ms: {'met' if overhead < 0.005 else 'NOT met'})")
            per_client = max(5, calls // CONCURRENT)
            print(f"throughput, {CONCURRENT} concurrent clients (threads of another process) x {per_client} calls:")
            print(f"  direct to upstream : {throughput(direct, per_client):7.0f} calls/s")
            print(f"  through gateway    : {throughput(via, per_client):7.0f} calls/s")


def prompt_text(tokens_approx: int) -> str:
    """A fresh prompt each time (a random prefix defeats llama.cpp's prompt cache)."""
    words = " ".join(random.choice(["alpha", "beta", "gamma", "delta", "loss", "agent"]) for _ in range(tokens_approx))
    return f"[{random.random()}] Summarise these words in one sentence: {words}"


def embedded_figures(threads: int, prompt_tokens: int, gen_tokens: int) -> None:
    with EmbeddedServer(EmbeddedConfig(threads=threads, ctx_size=4096)) as server:
        base = server.endpoint.base_url
        with httpx.Client(timeout=600) as http:
            body = {"model": server.endpoint.model, "max_tokens": gen_tokens, "temperature": 0, "stream": True,
                    "messages": [{"role": "user", "content": prompt_text(prompt_tokens)}]}
            started = time.perf_counter()
            ttft = None
            with http.stream("POST", f"{base}/chat/completions", json=body) as response:
                for line in response.iter_lines():
                    if ttft is None and line.startswith("data:") and '"content"' in line:
                        ttft = time.perf_counter() - started
            body.update(stream=False, messages=[{"role": "user", "content": prompt_text(prompt_tokens)}])
            body["ignore_eos"] = True  # llama.cpp: generate exactly max_tokens, for a steady tok/s figure
            timings = http.post(f"{base}/chat/completions", json=body).json().get("timings", {})
    print(f"embedded model, {threads} thread(s), ~{timings.get('prompt_n', '?')} prompt tokens:")
    print(f"  time to first token: {ttft:.2f} s" if ttft is not None else "  time to first token: (no token)")
    print(f"  prompt processing  : {timings.get('prompt_per_second', float('nan')):.1f} tok/s")
    print(f"  generation         : {timings.get('predicted_per_second', float('nan')):.1f} tok/s "
          f"({timings.get('predicted_n', '?')} tokens)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--threads", default="1,2", help="embedded model thread counts to measure")
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--no-embedded", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    gateway_figures(args.calls)
    if not args.no_embedded:
        for threads in (int(t) for t in args.threads.split(",")):
            embedded_figures(threads, args.prompt_tokens, args.gen_tokens)


if __name__ == "__main__":
    main()
