"""The review workbench: a FastAPI web app over the store."""
