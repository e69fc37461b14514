"""Every error that carries a fix for the user shares one base class, and the command line prints it
as one message without a traceback."""

from __future__ import annotations

import io

import pytest

from livefusion.cli import main
from livefusion.config import ConfigError
from livefusion.models.download import DownloadError
from livefusion.errors import LiveFusionError
from livefusion.face.embed import SourceFaceError
from livefusion.media.imageio import ImageLoadError
from livefusion.models.store import CatalogError, ModelError, ModelUnavailableError
from livefusion.models.runtime import ModelLoadError
from livefusion.media.sinks import SinkError
from livefusion.media.sources import SourceError


@pytest.mark.parametrize("error", [ConfigError, DownloadError, SourceFaceError, ImageLoadError,
                                   CatalogError, ModelError, ModelUnavailableError, ModelLoadError,
                                   SinkError, SourceError])
def test_user_facing_errors_share_the_base(error):
    assert issubclass(error, LiveFusionError)


def test_cli_prints_a_user_error_without_traceback(tmp_path, capsys):
    out = io.StringIO()
    code = main(["--no-preview", "--input", str(tmp_path / "missing.mp4"), "--frames", "1"], out=out)
    assert code != 0
    text = out.getvalue() + capsys.readouterr().err
    assert "missing.mp4" in text
    assert "Traceback" not in text
