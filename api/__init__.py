"""The FastAPI app. Uses ``core`` (and later the read side of ``streams``); nothing imports it."""
