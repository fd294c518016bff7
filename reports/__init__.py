"""Reports read the store, build report models and render them with Jinja2."""
