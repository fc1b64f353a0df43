"""Where stylized frames go: files, virtual cameras, network streams, memory (tests)."""
