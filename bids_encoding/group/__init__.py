"""Group level: scaling laws and lateralization across participants and models."""
