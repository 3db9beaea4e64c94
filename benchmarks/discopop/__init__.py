"""DiscoPOP benchmarks: engine performance figures for the loss-discovery domain (printed)."""
