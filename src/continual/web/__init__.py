"""The REST API (Litestar): thin handlers over the services, one error table."""
