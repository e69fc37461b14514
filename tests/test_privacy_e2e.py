"""End to end through the real app: with the default privacy settings viewers never see the
user's real face, judged independently (YuNet + MobileFaceNet, livefusion.measure.exposure) on every
frame the outputs get.

The app runs as in scripts/privacy_eval.py: the generated clips (faces sliding in from each
edge, hard cuts, a turned face, empty frames between faces) as `input.file`, every frame
processed, the real SCRFD detector, a stand-in swapper that paints swapped faces magenta and a
source photo of someone else. Then stages are made to fail on some frames, and the models are
made slow to load while frames already flow: still no exposed frame.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import pytest

import livefusion.app as app_module
from livefusion.app import build_app
from livefusion.config import load_config
from livefusion.measure.exposure import ExposureJudge, JudgingSink
from livefusion.measure.privacy_clips import CLIP_NAMES
from livefusion.measure.standins import arcface_standin, paint_inswapper
from tests.conftest import SHARED_IMAGES, SHARED_MODELS
from tests.face.onnx_builders import identity_enhancer, shared_path

pytestmark = [pytest.mark.shared, pytest.mark.slow]

SOURCE_FACE = "insightface_Nathalie_Baye_0002.jpg"  # a person in none of the clips


@pytest.fixture(scope="module")
def clips(privacy_clips):
    shared_path(SHARED_IMAGES, SOURCE_FACE)
    return privacy_clips


@pytest.fixture(scope="module")
def judge(exposure_judge):
    return exposure_judge


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("privacy_e2e_models")
    return {"detector": str(shared_path(SHARED_MODELS, "det_2.5g.onnx")),
            "embedder": str(arcface_standin(folder / "w600k_r50.onnx")),
            "swapper": str(paint_inswapper(folder / "inswapper_128.onnx")),
            "enhancer": str(identity_enhancer(folder / "gfpgan_1.4.onnx"))}


def app_config(clip: Path, models: dict[str, str], *, sources: bool = True,
               frames: int = 0, **extra: Any):
    """The evaluation's config; the privacy keys are left at their defaults."""
    w, h = int(cv2.VideoCapture(str(clip)).get(3)), int(cv2.VideoCapture(str(clip)).get(4))
    roles = {k: v for k, v in models.items() if k != "enhancer" or "face.enhancer" in extra}
    pairs = [("input.file", str(clip)), ("input.realtime", False), ("input.loop", False),
             ("input.resolution", f"{w}x{h}"), ("output.virtual_cam", False),
             ("output.preview", False), ("runtime.providers", ["cpu"]),
             ("pipeline.frames", frames), ("face.color_transfer", False),
             ("face.sources", [str(SHARED_IMAGES / SOURCE_FACE)] if sources else []),
             ("models.overrides", roles)]
    return load_config(overrides=pairs + list(extra.items()))


def run_judged(config, judge: ExposureJudge, *,
               before_start: Callable[[Any], None] | None = None,
               while_running: Callable[[Any], None] | None = None) -> JudgingSink:
    sink = JudgingSink(judge, keep_exposed=3)
    app = build_app(config, extra_sinks=[sink])
    if before_start is not None:
        before_start(app)
    with app:
        if while_running is not None:
            while_running(app)
        assert app.pipeline.wait(120), "the run did not finish"
    app.pipeline.join(10)
    return sink


def assert_never_exposed(sink: JudgingSink, *, min_face_frames: int) -> None:
    face_frames = [r for r in sink.records if r.judged]
    assert len(face_frames) >= min_face_frames, (
        f"the judge saw faces on only {len(face_frames)} frames: the check would be empty")
    exposed = [(r.seq, r.action, r.reasons, r.errors, [round(c, 2) for c in r.judgement.cosines])
               for r in sink.records if r.exposed]
    assert not exposed, (f"{len(exposed)} of {len(face_frames)} face frames showed the real face "
                         f"(seq, guard action, reasons, errors, cosines): {exposed[:12]}")


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_no_real_face_reaches_the_outputs_with_the_default_settings(clips, judge, models, name):
    truth = clips[name]
    config = app_config(truth.path, models)
    assert config.privacy.policy == "hide"  # the default the user gets
    sink = run_judged(config, judge)
    assert len(sink.records) == truth.n_frames  # lossless: every frame judged
    assert_never_exposed(sink, min_face_frames=int(truth.whole_face().sum() * 0.8))


def test_the_check_sees_real_faces_when_the_guard_is_off_and_swaps_fail(clips, judge, models,
                                                                       monkeypatch):
    """The control: the same run with the guard off and every swap failing shows the real
    face on (nearly) every face frame, so a clean result above means something."""
    truth = clips["turned"]
    config = app_config(truth.path, models, frames=30, **{"privacy.policy": "off"})

    def break_swapper(app) -> None:
        monkeypatch.setattr(app.engine.swapper, "swap_crop", Flaky(app.engine.swapper.swap_crop, 1))

    sink = run_judged(config, judge, before_start=break_swapper)
    face_frames = [r for r in sink.records if r.judged]
    assert len(face_frames) >= 25
    assert sum(r.exposed for r in face_frames) >= 0.9 * len(face_frames)


class Flaky:
    """Wraps a callable so that it raises on every `period`-th call (from the `first`-th)."""

    def __init__(self, fn: Callable[..., Any], period: int, first: int = 1) -> None:
        self.fn, self.period, self.first = fn, period, first
        self.calls = self.raised = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls += 1
            fail = self.calls >= self.first and (self.calls - self.first) % self.period == 0
            self.raised += fail
        if fail:
            raise RuntimeError(f"injected failure (call {self.calls})")
        return self.fn(*args, **kwargs)


# (what fails, how to reach it from the running app, failure period in calls)
FAILURES = [
    ("detector", lambda app: (app.engine.detector, "detect"), 2),
    ("swapper", lambda app: (app.engine.swapper, "swap_crop"), 3),
    ("enhancer", lambda app: (app.engine.enhancer, "enhance"), 3),
    ("blender", lambda app: (app.engine.blender, "paste_faces"), 3),
]


@pytest.mark.parametrize("what,reach,period", FAILURES, ids=[f[0] for f in FAILURES])
def test_no_real_face_when_a_stage_fails_on_some_frames(clips, judge, models, monkeypatch,
                                                         what, reach, period):
    truth = clips["cuts"]
    extra = {"face.enhancer": "gfpgan_1.4"} if what == "enhancer" else {}
    config = app_config(truth.path, models, frames=36, **extra)  # three cuts in there
    flaky: list[Flaky] = []

    def inject(app) -> None:
        owner, attr = reach(app)
        assert owner is not None, f"the app has no {what} to break"
        wrapper = Flaky(getattr(owner, attr), period)
        monkeypatch.setattr(owner, attr, wrapper)
        flaky.append(wrapper)

    sink = run_judged(config, judge, before_start=inject)
    assert flaky[0].raised >= 3, f"the {what} failed only {flaky[0].raised} times"
    assert len(sink.records) == 36
    assert_never_exposed(sink, min_face_frames=30)


def test_no_real_face_while_the_models_load_slowly(clips, judge, models, monkeypatch):
    truth = clips["cuts"]  # a face on every frame
    config = app_config(truth.path, models, sources=False)
    real_build = app_module.build_face_engine
    loaded = threading.Event()

    def slow_build(cfg, **kwargs):
        time.sleep(1.0)  # models that take a while (a real download or TensorRT build: longer)
        return real_build(cfg, **kwargs)

    monkeypatch.setattr(app_module, "build_face_engine", slow_build)
    engine_seen: list[bool] = []

    def watch(app) -> None:
        assert app.engine is None
        app.pipeline.subscribe(lambda packet: engine_seen.append(app.engine is not None))

    def add_source_while_frames_flow(app) -> None:
        while app.pipeline.frames_out < 3:
            app.pipeline.wait(0.01)
        future = app.add_source([SHARED_IMAGES / SOURCE_FACE])
        future.add_done_callback(lambda f: loaded.set())
        assert future.result(30) == 0

    sink = run_judged(config, judge, before_start=watch, while_running=add_source_while_frames_flow)
    assert loaded.is_set()
    assert len(sink.records) == truth.n_frames
    assert not all(engine_seen) and any(engine_seen), (
        "the run should have frames from before and after the models loaded")
    assert_never_exposed(sink, min_face_frames=int(truth.n_frames * 0.8))
