"""The Jinja templates of generated projects, shipped inside tinydeploy as package data (see tinydeploy/sources.py).

Not Python: this file only lets an editable install find the folder the way an installed wheel does."""
