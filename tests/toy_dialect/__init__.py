"""A toy dialect kept outside the layer, to show what adding a dialect takes: a package like
this one (its wire, renderer and cancel modules, its OpenAPI table) and one registry entry,
which ``tests/unit/test_dialect_registry.py`` makes while it runs. Nothing else in the project
names it."""
