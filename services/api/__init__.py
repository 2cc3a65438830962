"""OpenAI-compatible HTTP surface: request/response models, errors, the FastAPI app."""
