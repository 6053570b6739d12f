"""Task lifecycle: statuses and their transitions, and the store on SQLAlchemy Core."""
