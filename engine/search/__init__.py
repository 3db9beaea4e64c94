"""The generic discovery loop (knows nothing of agents or losses: those are domains).

Run directory, and what each file promises:
  run.json        the domain (name or module:Class) the directory belongs to
  config.json     the resolved run config ([domain] validated by the domain's model)
  archive.jsonl   one record per candidate, appended in candidate order, fsync'd (archive.py)
  pending/        the journal: one file per candidate in flight, rewritten atomically after
                  every LLM reply and attempt; a finished record waits here for earlier ones
                  (journal.py)
  clock.json      wall time spent by all processes of the run (the wall-time budget)
  agent_spend.json  LLM spend through the gateway (agents, judge) by all processes of the run,
                  written after every call (spend.py): with the meta spend recorded in the
                  archive and journal, what the run budget ([llm] budget_usd/tokens) counts
  candidates/<id> what the domain wrote while evaluating that code
  events.jsonl    structlog events (CLI runs); report.html (report.py)

Resume = run the loop again on the directory: archived slots (generation, index) are skipped,
journaled candidates continue from their saved step (an evaluation cut off by a crash, by an
outage of the LLM upstream or the Docker engine, or by the run budget is run once more; one that
finished was journaled with its record, in the same write as its attempt; replies already
received are not asked for again), the rest start fresh. Before anything new starts, the sandbox
removes the containers and images the dead process left (their owner labels name a process that
is gone; engine/sandbox/owner.py). SIGINT and SIGTERM stop cleanly after the evaluations in
flight (cli.py).

Whose fault: anything a candidate can influence ends as its CandidateFailure (result files go
through engine.sandbox.results); an outage (settle.py: the engine probes the upstream itself)
or a broken Docker engine stops the run with the candidate pending, never archived.
"""
