"""Storage: SQLAlchemy 2 models, Alembic migrations, the read repository and the single writer."""
