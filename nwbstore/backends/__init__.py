"""Storage backends (one module per backend) and the registry that picks one."""
