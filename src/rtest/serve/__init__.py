"""`rtest serve`: rtest as a shared service (HTTP API, run registry, machine-wide step slots, web page).

app (routes), manager (runs), registry (SQLite), slots (the shared pool), bundle (safe uploads),
auth (token), files/streams (reading what runs wrote), client (the CLI's and the factory's side).
"""
