"""Template responses: stored in Redis per category and language, with built-in fallbacks."""
from services.templates.language import pick_language
from services.templates.store import Template, TemplateStore, base_category, load_seed

__all__ = ["Template", "TemplateStore", "base_category", "load_seed", "pick_language"]
