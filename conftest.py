"""Loads the hypothesis profile named by ``$HYPOTHESIS_PROFILE`` (``dev``, ``ci`` or
``thorough``; default ``ci``) with the example database at ``$GRADCHECK_DATABASE``
(default ``.hypothesis/gradcheck``): see ``gradcheck_kit.profiles``."""

from __future__ import annotations

from gradcheck_kit import profiles

profiles.load_profile()
