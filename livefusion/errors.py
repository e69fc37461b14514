"""The one base class of errors a user can act on.

Every error whose message says what to do (a bad config value, a missing camera or virtual-camera
driver, a model that will not download or load, a source photo without a face) derives from
`LiveFusionError`. The command line and the window print such errors as one message without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LiveFusionError(Exception):
    """An error whose message names the problem and the fix."""
