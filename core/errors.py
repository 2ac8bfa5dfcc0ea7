"""Exception types of the shared base. Each says what the user should do next."""


class CommuneVisionError(Exception):
    """Base class for every error the project raises on purpose."""


class ConfigError(CommuneVisionError):
    """The configuration is invalid. ``errors`` holds one line per problem, with key paths."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"{source}: {len(errors)} configuration error(s):\n{lines}")


class StorageError(CommuneVisionError):
    """The database or the media folder cannot be used."""


class BusError(CommuneVisionError):
    """The Redis/Valkey event bus cannot be reached."""
