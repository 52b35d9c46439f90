"""Herald: OpenStack Compute server external events, wire-compatible with Nova."""
