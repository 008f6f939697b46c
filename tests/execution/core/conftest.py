"""Under ``make mutation`` (TRADELOOP_MUTATION=1) property tests are derandomized and keep no
example database, so a mutant is killed or not the same way in every run (the CI floor relies
on it). Normal test runs are untouched."""

from __future__ import annotations

import os

from hypothesis import settings

if os.environ.get("TRADELOOP_MUTATION"):
    settings.register_profile("mutation", database=None, derandomize=True)
    settings.load_profile("mutation")
