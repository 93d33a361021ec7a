"""`rtest init`: the interactive part (issue 16).

find.py: which DAG, config, interface folders and wheelhouse a project holds (and the framework's own
catalogue when it is importable); ask.py: questions answered on a terminal or one per line on stdin;
dialogue.py: what was found, the pending inputs asked for, a spec file with relative paths;
scaffold.py: `rtest init --new DIR`, a minimal runnable pipeline.
"""
