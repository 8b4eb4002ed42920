"""Small programs that tasks run on render nodes (`python -m thresher.tools.NAME`)."""
