"""Template responses: stored in Redis per category and language, with built-in fallbacks."""
from services.templates.language import language_preferences
from services.templates.store import Template, TemplateStore, base_category, load_seed

__all__ = ["Template", "TemplateStore", "base_category", "load_seed", "language_preferences"]
