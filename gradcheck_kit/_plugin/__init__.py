"""The pytest plugin's parts: ``settings`` (options, seeds, the header), ``collect`` (the
collector and its items), ``fixture`` (``gradcheck``) and ``outcomes`` (what reaches the
controller, the terminal summary and the reports). ``gradcheck_kit.pytest_plugin`` holds the
hooks. Only ``settings`` is imported with the plugin; it needs nothing beyond the standard
library, so a pytest run that never touches gradcheck-kit pays for none of it."""
