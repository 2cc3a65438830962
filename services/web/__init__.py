"""The chat page (static HTML/CSS/JS, no build step) and POST /v1/feedback, as one FastAPI router."""
from services.web.router import create_web_router

__all__ = ["create_web_router"]
