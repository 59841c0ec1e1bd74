"""The HTTP API: thin FastAPI routes over the services, pydantic schemas at the edge."""
