"""The NiceGUI dashboard at ``/dashboard``: pages that call the services, never the REST API.

Nothing here is imported unless the dashboard is enabled: ``continual.app`` imports
``continual.ui.mount`` lazily, so an app built with ``CONTINUAL_DASHBOARD=false`` never
loads NiceGUI. ``auth``, ``view``, ``chart``, ``format``, ``context`` and ``stream`` are
framework-free; ``mount``, ``layout`` and ``pages`` are the NiceGUI side.
"""
