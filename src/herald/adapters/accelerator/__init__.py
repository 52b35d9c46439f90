"""Accelerator service adapters (Cyborg's role)."""
