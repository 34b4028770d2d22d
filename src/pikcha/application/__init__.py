"""Use cases over the ports: generate, load, publish, project, features, quality."""
