"""Documents rendered from measured runs (model cards, metrics JSON) by jinja2 templates."""
