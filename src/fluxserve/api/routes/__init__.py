"""One router per resource: run, task, tool, file, health."""
