"""Domain operations. Views, CLI commands and tasks call these; these never import a view."""
