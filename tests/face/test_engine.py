"""The engine end to end: real detection, an exact-contract identity swapper, real paste-back.

Swapping with a swapper that returns its target must give the original frame back: PSNR of at
least 35 dB over each face and identical pixels outside the paste regions, also for faces cut
by the frame border. (The 128-pixel swap crop bounds the round trip's fidelity: faces much
larger than the crop lose detail, which is why the photos used here have faces of about crop
size; MODELS.md's inswapper has the same limit.) The engine here blends with the face mask
(the default) from a real 106-point landmarker in 2d106det's contract (PFLD-106-lite wrapped);
the box mask replaces the whole face box, so its round trip over the box is the crop's own
resolution (34.3 dB on the face cut by the top edge) and is checked at 34 dB.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livefusion.face.align import warp_crop
from livefusion.face.blend import BlendOptions, paste_roi
from livefusion.face.detect import ScrfdDetector
from livefusion.face.embed import Recognizer, SourceFaceError
from livefusion.face.engine import FaceEngine
from livefusion.face.enhance import FaceEnhancer
from livefusion.face.landmarks import Landmarker106, LandmarkTracker
from livefusion.face.locate import EveryFrameLocator
from livefusion.face.swap import InswapperSwapper, load_emap
from livefusion.packet import FramePacket
from livefusion.settings import LiveSettings
from livefusion.stages import BlendStage, InferenceStage, StageFailure
from tests.conftest import SHARED_IMAGES, SHARED_MODELS
from livefusion.measure.standins import pfld106_as_2d106det
from tests.face.onnx_builders import arcface_standin, cpu_session, identity_enhancer, identity_inswapper, shared_path

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("engine")
    detector = ScrfdDetector(cpu_session(shared_path(SHARED_MODELS, "det_500m.onnx")))
    recognizer = Recognizer(cpu_session(arcface_standin(folder / "w600k_r50.onnx")))
    swappers = {}
    for fp16 in (False, True):
        path = identity_inswapper(folder / f"inswapper_{fp16}.onnx", fp16=fp16)
        swappers[fp16] = InswapperSwapper(cpu_session(path), load_emap(path))
    enhancer = FaceEnhancer(cpu_session(identity_enhancer(folder / "gpen256.onnx", size=256)), "gpen_bfr_256")
    landmarker = Landmarker106(cpu_session(pfld106_as_2d106det(
        shared_path(SHARED_MODELS, "pfld106_lite.onnx"), folder / "2d106det.onnx")))
    return detector, recognizer, swappers, enhancer, landmarker


@pytest.fixture(scope="module")
def images():
    return {n: cv2.imread(str(shared_path(SHARED_IMAGES, n)))
            for n in ("fr_two_people.jpg", "insightface_t1.jpg", "fr_obama2.jpg", "fr_obama.jpg")}


def _engine(parts, *, fp16=False, enhancer=False, sources=True, landmarks=True):
    detector, recognizer, swappers, enh, landmarker = parts
    engine = FaceEngine(EveryFrameLocator(detector), detector=detector, recognizer=recognizer,
                        swapper=swappers[fp16], enhancer=enh if enhancer else None,
                        landmarks=LandmarkTracker(landmarker) if landmarks else None)
    if sources:
        engine.add_source(shared_path(SHARED_IMAGES, "fr_obama2.jpg"))
    return engine


def _run(engine, frame, **settings):
    packet = FramePacket(seq=1, t_capture_ns=0, frame=frame, settings=LiveSettings(**settings))
    engine.process(packet)
    engine.blend(packet)
    return packet


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _check_identity_round_trip(packet, original, min_psnr=35.0):
    swapped = [f for f in packet.faces if f.swapped_crop is not None]
    assert swapped, "at least one face was swapped"
    untouched = np.ones(original.shape[:2], bool)
    for face in swapped:
        roi = paste_roi(original.shape, face.crop_matrix, face.swapped_crop.shape[0])
        untouched[roi.y0:roi.y1, roi.x0:roi.x1] = False
        x0, y0 = np.maximum(np.floor(face.bbox[:2]).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(face.bbox[2:]).astype(int), original.shape[1::-1])
        region = (slice(y0, y1), slice(x0, x1))
        assert _psnr(packet.frame[region], original[region]) >= min_psnr
    np.testing.assert_array_equal(packet.frame[untouched], original[untouched])
    assert not np.array_equal(packet.frame, original), "the paste really wrote something"


def test_engine_implements_both_stages(parts):
    engine = _engine(parts, sources=False)
    assert isinstance(engine, InferenceStage) and isinstance(engine, BlendStage)


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
@pytest.mark.parametrize("image", ["fr_two_people.jpg", "insightface_t1.jpg"])
@pytest.mark.parametrize("colour", [True, False])
def test_identity_swap_gives_the_frame_back(parts, images, fp16, image, colour):
    frame = images[image]
    packet = _run(_engine(parts, fp16=fp16), frame, color_transfer=colour)
    assert len(packet.faces) == {"fr_two_people.jpg": 2, "insightface_t1.jpg": 6}[image]
    assert all(f.swapped_crop is not None for f in packet.faces)
    assert packet.original is frame and packet.frame is not frame
    _check_identity_round_trip(packet, frame)
    for stage in ("detect", "select", "align", "swap", "blend"):
        assert stage in packet.timings_ms


@pytest.mark.parametrize(
    "cut",
    [(slice(None), slice(300, None)), (slice(100, None), slice(None)), (slice(None, 200), slice(None, 900))],
    ids=["left", "top", "bottom-right"],
)
def test_identity_swap_of_faces_cut_by_the_border(parts, images, cut):
    frame = np.ascontiguousarray(images["fr_two_people.jpg"][cut])
    packet = _run(_engine(parts), frame)
    outside = [f for f in packet.faces if (f.bbox[:2] < 1).any() or f.bbox[2] > frame.shape[1] - 1
               or f.bbox[3] > frame.shape[0] - 1]
    assert outside, "a detected face reaches the frame border"
    _check_identity_round_trip(packet, frame)


def test_larger_face_scaled_to_crop_size(parts, images):
    frame = cv2.resize(images["fr_obama.jpg"], None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    packet = _run(_engine(parts), frame)
    assert packet.debug["mask_mode"] == "face" and packet.faces[0].landmarks is not None
    _check_identity_round_trip(packet, frame)


@pytest.mark.parametrize("mode", ["box", "face+mouth"])
@pytest.mark.parametrize("cut", [(slice(None), slice(None)), (slice(100, None), slice(None))],
                         ids=["whole", "top"])
def test_identity_swap_with_the_other_masks(parts, images, mode, cut):
    frame = np.ascontiguousarray(images["fr_two_people.jpg"][cut])
    packet = _run(_engine(parts), frame, mask_mode=mode)
    assert packet.debug["mask_mode"] == mode
    _check_identity_round_trip(packet, frame, min_psnr=34.0 if mode == "box" else 35.0)


def test_without_a_landmarker_the_face_modes_blend_with_the_box(parts, images):
    frame = images["fr_two_people.jpg"]
    packet = _run(_engine(parts, landmarks=False), frame, mask_mode="face", show_mask=True)
    assert packet.debug["mask_mode"] == "box"
    assert all(f.landmarks is None for f in packet.faces)
    boxed = _run(_engine(parts), frame, mask_mode="box", show_mask=True)
    np.testing.assert_array_equal(packet.debug["mask"], boxed.debug["mask"])


def test_no_face_no_source_and_switched_off(parts, images):
    blank = np.zeros((240, 320, 3), np.uint8)
    packet = _run(_engine(parts), blank)
    assert packet.faces == [] and packet.frame is blank and "blend" in packet.timings_ms

    frame = images["fr_two_people.jpg"]
    packet = _run(_engine(parts, sources=False), frame)
    assert len(packet.faces) == 2 and packet.frame is frame
    assert packet.debug["swap"] == "no source face set"

    packet = _run(_engine(parts), frame, swap_enabled=False)
    assert len(packet.faces) == 2 and packet.frame is frame
    assert all(f.swapped_crop is None for f in packet.faces)


@pytest.mark.parametrize("frame", [np.zeros((3, 3, 3), np.uint8), np.full((16, 9, 3), 200, np.uint8)],
                         ids=["3x3", "16x9"])
def test_tiny_frames_pass_through(parts, frame):
    packet = _run(_engine(parts), frame)
    assert packet.faces == [] and packet.frame is frame


def test_largest_only(parts, images):
    frame = images["insightface_t1.jpg"]
    packet = _run(_engine(parts), frame, swap_faces="largest")
    swapped = [f for f in packet.faces if f.swapped_crop is not None]
    assert len(swapped) == 1 and swapped[0].area == max(f.area for f in packet.faces)


def test_show_mask_puts_a_full_frame_mask_in_debug(parts, images):
    frame = images["fr_two_people.jpg"]
    assert "mask" not in _run(_engine(parts), frame).debug
    mask = _run(_engine(parts), frame, show_mask=True).debug["mask"]
    assert mask.shape == frame.shape[:2] and mask.dtype == np.float32
    assert mask.max() > 0.99 and mask[0, -1] == 0.0


def test_the_mask_view_shows_the_mask_in_use(parts, images):
    """M shows the face outline in face modes (the box corners are not pasted), the box in
    box mode, and the kept mouth as a hole."""
    frame = images["fr_two_people.jpg"]
    views = {mode: _run(_engine(parts), frame, show_mask=True, mask_mode=mode)
             for mode in ("box", "face", "face+mouth")}
    for mode, packet in views.items():
        assert packet.debug["mask_mode"] == mode
    face = views["face"].faces[0]
    inverse = cv2.invertAffineTransform(face.crop_matrix)
    corner = np.round(inverse @ np.array([18.0, 18.0, 1.0])).astype(int)  # near the crop's corner
    assert views["box"].debug["mask"][corner[1], corner[0]] > 0.9
    assert views["face"].debug["mask"][corner[1], corner[0]] == 0.0
    mouth = np.round(face.landmarks[52:72].mean(axis=0)).astype(int)
    assert views["face"].debug["mask"][mouth[1], mouth[0]] > 0.99
    assert views["face+mouth"].debug["mask"][mouth[1], mouth[0]] < 0.05


def test_enhancer_runs_only_when_enabled(parts, images):
    frame = images["fr_two_people.jpg"]
    engine = _engine(parts, enhancer=True)
    off = _run(engine, frame)
    assert "enhance" not in off.timings_ms and off.faces[0].swapped_crop.shape == (128, 128, 3)
    on = _run(engine, frame, enhancer_enabled=True)
    assert "enhance" in on.timings_ms and on.faces[0].swapped_crop.shape == (256, 256, 3)
    _check_identity_round_trip(on, frame)


def test_sources_add_replace_remove_and_active_is_clamped(parts, images, tmp_path):
    engine = _engine(parts, sources=False)
    obama, obama2 = shared_path(SHARED_IMAGES, "fr_obama.jpg"), shared_path(SHARED_IMAGES, "fr_obama2.jpg")
    assert engine.add_source(obama) == 0
    assert engine.add_source([obama, obama2]) == 1
    assert [s.paths for s in engine.sources] == [(obama,), (obama, obama2)]
    assert engine.active_source_index(LiveSettings(active_source=7)) == 1
    assert engine.active_source_index(LiveSettings(active_source=0)) == 0
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 90, np.uint8))
    with pytest.raises(SourceFaceError, match="blank.png"):
        engine.set_sources([[obama2], [blank]])
    assert len(engine.sources) == 2, "a failed replacement changes nothing"
    engine.set_sources([[obama2]])
    assert [s.paths for s in engine.sources] == [(obama2,)]
    engine.remove_source(0)
    assert engine.sources == () and engine.active_source_index(LiveSettings()) is None
    with pytest.raises(IndexError, match="no source face 0"):
        engine.remove_source(0)


def test_source_with_several_faces_reports_it(parts):
    engine = _engine(parts, sources=False)
    engine.add_source(shared_path(SHARED_IMAGES, "fr_two_people.jpg"))
    assert "2 faces found, using the largest" in engine.sources[0].notes[0]


def test_recogniser_that_does_not_fit_the_swapper_is_refused(parts):
    detector, _, swappers, _, _ = parts
    small = Recognizer(cpu_session(shared_path(SHARED_MODELS, "pixamatch_mobilefacenet.onnx")))
    with pytest.raises(ValueError, match="128-d embeddings but the swapper expects 512-d"):
        FaceEngine(EveryFrameLocator(detector), detector=detector, recognizer=small, swapper=swappers[False])


def test_grayscale_frame_is_a_clear_error_for_the_pipeline_to_count(parts):
    packet = FramePacket(seq=1, t_capture_ns=0, frame=np.zeros((120, 160), np.uint8))
    with pytest.raises(StageFailure, match=r"BGR frame \(H, W, 3\)") as caught:
        _engine(parts, sources=False).process(packet)
    assert caught.value.stage == "locate"
    assert isinstance(caught.value.cause, ValueError)
    assert not packet.located  # the guard must not take the (empty) face list as the truth


def test_runs_on_runtime_model_sessions(images, tmp_path):
    """The wiring hands in livefusion.models.runtime ModelSessions, not raw onnxruntime sessions."""
    from livefusion.config import RuntimeConfig
    from livefusion.models.runtime import create_session

    config = RuntimeConfig(providers=["cpu"], warmup=False)
    detector = ScrfdDetector(create_session(shared_path(SHARED_MODELS, "det_500m.onnx"), config))
    recognizer = Recognizer(create_session(arcface_standin(tmp_path / "w600k_r50.onnx"), config))
    swapper_path = identity_inswapper(tmp_path / "inswapper_128_fp16.onnx", fp16=True)
    swapper = InswapperSwapper(create_session(swapper_path, config), load_emap(swapper_path))
    engine = FaceEngine(EveryFrameLocator(detector), detector=detector, recognizer=recognizer, swapper=swapper)
    engine.add_source(shared_path(SHARED_IMAGES, "fr_obama2.jpg"))
    frame = images["fr_two_people.jpg"]
    _check_identity_round_trip(_run(engine, frame), frame)


def test_swapper_input_travels_to_the_blender_as_the_colour_target(parts, images):
    """The blend reuses the swap's input crop for the colour statistics: same picture as
    warping the frame again, and none is kept once an enhancer moves the crop."""
    frame = images["fr_two_people.jpg"]
    packet = _run(_engine(parts), frame)
    for face in packet.faces:
        np.testing.assert_array_equal(face.target_crop, warp_crop(frame, face.crop_matrix, 128))
    rewarped = frame.copy()
    for face in packet.faces:
        face.target_crop = None
    _engine(parts).blender.paste_faces(rewarped, packet.faces, BlendOptions(color_transfer=True))
    np.testing.assert_array_equal(packet.frame, rewarped)
    enhanced = _run(_engine(parts, enhancer=True), frame, enhancer_enabled=True)
    assert all(f.target_crop is None for f in enhanced.faces)


def test_reset_makes_the_locator_forget_its_tracks(parts, images):
    """After reset (a new input) the next frame is detected afresh, not carried by a track of
    the old input."""
    from livefusion.face.track import TrackingLocator

    detector = parts[0]
    engine = _engine(parts, landmarks=False)
    engine.locator = TrackingLocator(detector)
    frame = images["fr_obama.jpg"]

    def origins(seq: int) -> list[str]:
        packet = FramePacket(seq=seq, t_capture_ns=seq * 33_333_333, frame=frame,
                             settings=LiveSettings(detect_every=30))
        engine.process(packet)
        return [face.origin for face in packet.faces]

    assert origins(1) == ["detect"]
    assert origins(2) and "detect" not in origins(3)  # tracked between detections
    engine.reset()
    assert origins(4) == ["detect"]
