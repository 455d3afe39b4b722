"""pydantic models shared across deployments (HTTP and handle boundaries)."""
