"""Stand-in script: planning only reads it."""
