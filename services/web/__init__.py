"""The chat page (static HTML/CSS/JS, no build step) and POST /v1/feedback, as one FastAPI router."""
from services.web.routes import create_web_routes

__all__ = ["create_web_routes"]
