"""The generic discovery loop (knows nothing of agents or losses: those are domains).

The run directory and what each file in it promises: rundir.py.

Resume = run the loop again on the directory: archived slots (generation, index) are skipped,
journaled candidates continue from their saved step (an evaluation cut off by a crash, by an
outage of the LLM upstream or the Docker engine, or by the run budget is run once more; one that
finished was journaled with its record, in the same write as its attempt; replies already
received are not asked for again), the rest start fresh. Before anything new starts, the sandbox
removes the containers and images the dead process left (their owner labels name a process that
is gone; engine/sandbox/owner.py). SIGINT and SIGTERM stop cleanly after the evaluations in
flight (engine/cli/search.py, which owns the signal handlers).

Whose fault: anything a candidate can influence ends as its CandidateFailure (result files go
through engine.sandbox.results, mapped by engine.domains.kit); an outage (settle.py: the engine
probes the upstream itself) or a broken Docker engine stops the run with the candidate pending,
never archived.
"""
