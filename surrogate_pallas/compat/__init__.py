"""Drop-in replacements for peer libraries' APIs."""
