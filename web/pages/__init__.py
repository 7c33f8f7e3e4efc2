"""Page handlers, one module per page or group of pages; each has ``register(router, site)``."""
