"""ADAS domain: Meta Agent Search over `forward(self, taskInfo)` agents, each run in its own
container (see README.md in this folder)."""
