"""Routing: intent classification (nlu), routing rules (policy) and their decisions."""
