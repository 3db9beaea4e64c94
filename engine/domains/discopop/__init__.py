"""DiscoPOP: LLM-discovered preference-optimisation losses, trained with TRL in the sandbox."""
