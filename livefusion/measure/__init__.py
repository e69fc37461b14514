"""How we measure."""
