"""The built-in checks. Importing this package registers them all by name, in contract order."""

import importlib

MODULES = ("outcomes", "timing", "attribution", "response", "custom", "prometheus")

for _module in MODULES:
    importlib.import_module(f"{__name__}.{_module}")
