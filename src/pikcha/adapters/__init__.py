"""One module or package per technology; only the entrypoints import them."""
