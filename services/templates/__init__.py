"""Template responses: stored in Redis per category and language, with built-in fallbacks."""
from services.templates.language import language_preferences
from services.templates.store import Template, TemplateStore, base_category, load_builtin

__all__ = ["Template", "TemplateStore", "base_category", "load_builtin", "language_preferences"]
