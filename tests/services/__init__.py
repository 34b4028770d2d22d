"""Real test services started by the suite itself."""
