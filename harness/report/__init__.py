"""Rendering: the self-contained HTML report (the only jinja2 user), its charts, and the terminal."""
