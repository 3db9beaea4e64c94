"""Code that runs inside an ADAS candidate's container (stdlib + openai only).

Copied into the candidate image as the package `adas_box`: `framework` (what the meta LLM
reads and agents build on), `backend` (gateway or stub LLM), `harness` (selftest, evaluate).
"""
