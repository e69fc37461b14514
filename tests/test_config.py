from pathlib import Path

import pytest

from livefusion.config import (
    AppConfig,
    ConfigError,
    load_config,
    parse_resolution,
    read_toml,
    set_value,
)

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def test_default_toml_matches_the_schema_defaults():
    """configs/default.toml documents every key; it must not drift from the code."""
    assert load_config([CONFIGS / "default.toml"]).to_dict() == AppConfig().to_dict()
    data = read_toml(CONFIGS / "default.toml")
    assert {f"{s}.{k}" for s, body in data.items() for k in body} == {
        f"{s}.{k}" for s, body in AppConfig().to_dict().items() for k in body
    }


@pytest.mark.parametrize("profile", sorted(p.name for p in CONFIGS.glob("*.toml")))
def test_every_profile_loads(profile):
    load_config([CONFIGS / "default.toml", CONFIGS / profile])


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("face.det_score", "0.6", 0.6),
        ("face.detect_every", "3", 3),
        ("input.realtime", "no", False),
        ("input.camera", 2, "2"),
        ("runtime.providers", "cuda,cpu", ["cuda", "cpu"]),
        ("face.sources", ["a.jpg", "b.jpg"], ["a.jpg", "b.jpg"]),
    ],
)
def test_set_value_coerces_cli_strings(key, value, expected):
    cfg = AppConfig()
    set_value(cfg, key, value)
    section, name = key.split(".")
    assert getattr(getattr(cfg, section), name) == expected


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("face.swap_faces", "most", "choose one of: all, largest, reference"),
        ("face.det_score", "2", "face.det_score: 2.0 is above the maximum 1.0"),
        ("face.detect_every", "0", "below the minimum 1"),
        ("face.detect_every", "2.5", "expected int"),
        ("input.realtime", "maybe", "expected bool"),
        ("face.nope", "1", "config key face.nope is unknown; keys in [face]"),
        ("nope.key", "1", "config section 'nope' is unknown"),
        ("detect_every", "1", "use section.key"),
        ("face.enhancer", "gfpgan", "gfpgan_1.4"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(key, value, message):
    with pytest.raises(ConfigError, match=None) as info:
        set_value(AppConfig(), key, value)
    assert message in str(info.value)


def test_toml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[face]\nswap_faces = 'nobody'\n")
    with pytest.raises(ConfigError) as info:
        load_config([bad])
    assert "face.swap_faces" in str(info.value) and "bad.toml" in str(info.value)
    broken = tmp_path / "broken.toml"
    broken.write_text("[face\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config([broken])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config([tmp_path / "missing.toml"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ([("face.det_size", 300)], "multiple of 32"),
        ([("face.swap_faces", "reference")], "needs a reference image"),
        ([("runtime.providers", ["cuda", "gpu"])], "'gpu' is not allowed"),
        ([("input.resolution", "1920*1080")], "use WIDTHxHEIGHT"),
    ],
)
def test_cross_field_validation(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config([], overrides)
    assert message in str(info.value)


def test_later_sources_override_earlier(tmp_path):
    a = tmp_path / "a.toml"
    a.write_text("[face]\ndetect_every = 3\nopacity = 0.5\n")
    b = tmp_path / "b.toml"
    b.write_text("[face]\ndetect_every = 7\n")
    cfg = load_config([a, b], [("face.opacity", "0.9")])
    assert (cfg.face.detect_every, cfg.face.opacity) == (7, 0.9)


@pytest.mark.parametrize("text, size", [("1920x1080", (1920, 1080)), ("640X480", (640, 480))])
def test_parse_resolution(text, size):
    assert parse_resolution(text) == size
