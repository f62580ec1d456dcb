"""The video frames pipeline on small videos written here with PyAV: uniform sampling and timestamps
(constant and variable frame rates, seeks), the pixel budget, frame folders and lists, the errors a bad
video gives, and Qwen2.5-VL's video patches against transformers' processors and a hand-made case."""

from __future__ import annotations

import fractions
import re

import av
import numpy as np
import pytest
from PIL import Image

from reward_service.synth.scenes import generate_scene
from trainer_client.data import Record
from trainer_client.data.synthetic import CATEGORIES
from trainer_client.data.synthetic_video import category_colour, scene_video_records, video_codec, write_scene_video
from trainer_client.video import (
    Frames,
    VideoError,
    VideoLoader,
    expand_video_tokens,
    load_record_frames,
    qwen2_5_vl_video_inputs,
    sample_frames,
    smart_resize,
    uniform_indices,
    video_token_counts,
)
from trainer_client.video import decode as video_decode
from trainer_client.video.qwen import CLIP_MEAN, CLIP_STD

pytestmark = pytest.mark.trainer

MC = {"task_type": "multiple_choice", "answer": "A", "options": ["yes", "no"]}


def moving_scene(seed: int = 3):
    """A seeded scene whose mover crosses a good part of the room (so a wrong timestamp shows)."""
    rng = np.random.default_rng(seed)
    return generate_scene(rng, n_objects=4, n_frames=3, dim=2, moving=True, setting="indoor", categories=CATEGORIES)


@pytest.fixture(scope="module")
def scene_video(tmp_path_factory):
    """2 s at 8 fps, 64x48: 16 frames."""
    return write_scene_video(moving_scene(), tmp_path_factory.mktemp("v") / "scene.mp4", size=(64, 48), fps=8.0,
                             duration=2.0)


def write_levels(path, levels, *, pts_ms=None, gop=None, size=(64, 48), fps=10):
    """A video whose frame k is one grey level `levels[k]`; `pts_ms` gives each frame's time (a
    variable frame rate), `gop` the keyframe interval."""
    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(video_codec(), rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        if pts_ms is not None:
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for k, level in enumerate(levels):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), level, np.uint8), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[k], fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def record(video, record_id="item-7"):
    return Record(id=record_id, question="q?", options=["yes", "no"], video=video, reference=MC)


# ------------------------------------------------------------------------------------------- sampling


def test_uniform_indices_take_first_and_last_and_never_repeat():
    assert uniform_indices(16, 5) == [0, 4, 8, 11, 15]  # round(0, 3.75, 7.5, 11.25, 15), halves to even
    assert uniform_indices(12, 4) == [0, 4, 7, 11]
    assert uniform_indices(7, 1) == [0]
    assert uniform_indices(5, 5) == [0, 1, 2, 3, 4]
    for total in range(1, 40):
        for n in range(1, total + 1):
            got = uniform_indices(total, n)
            assert len(set(got)) == n and got[0] == 0 and (n == 1 or got[-1] == total - 1)
    with pytest.raises(ValueError, match="fewer than the 6 asked"):
        uniform_indices(5, 6)


def test_file_frames_are_uniform_with_their_timestamps_and_metadata(scene_video):
    frames = sample_frames(scene_video.path, 5, max_pixels=None)
    assert frames.pixels.shape == (5, 48, 64, 3) and frames.pixels.dtype == np.uint8
    assert frames.indices == (0, 4, 8, 11, 15)
    assert frames.timestamps == pytest.approx([0.0, 0.5, 1.0, 1.375, 1.875])
    assert (frames.source_fps, frames.duration, frames.total_frames) == (8.0, 2.0, 16)
    assert frames.metadata() == {"fps": 8.0, "duration": 2.0, "total_num_frames": 16,
                                 "frames_indices": [0, 4, 8, 11, 15], "video_backend": "pyav"}
    assert not frames.pixels.flags.writeable
    every = sample_frames(scene_video.path, 16, max_pixels=None)
    assert every.indices == tuple(range(16))


def test_decoded_frames_show_each_square_where_the_scene_puts_it_at_that_time(scene_video):
    frames = sample_frames(scene_video.path, 5, max_pixels=None)
    mover = scene_video.scene.movers[0]
    first, last = scene_video.centre_px(mover, frames.timestamps[0]), scene_video.centre_px(mover, frames.timestamps[-1])
    assert max(abs(first[0] - last[0]), abs(first[1] - last[1])) > 2 * scene_video.square  # guard: it moves
    checked = 0
    for pixels, t in zip(frames.pixels, frames.timestamps, strict=True):
        assert np.abs(pixels.astype(int) - scene_video.render(t).astype(int)).mean() < 6
        centres = {name: scene_video.centre_px(name, t) for name in scene_video.positions_at(t)}
        for name, (u, v) in centres.items():
            if any(max(abs(u - a), abs(v - b)) <= scene_video.square for other, (a, b) in centres.items()
                   if other != name):
                continue  # overlapped: the square drawn last covers it
            assert np.abs(pixels[v, u].astype(int) - category_colour(name)).max() < 40, (name, t)
            checked += 1
    assert checked >= 10


def test_variable_frame_rate_and_seeks_keep_each_frame_at_its_own_time(tmp_path):
    gaps = [40, 160, 90, 300, 50, 120] * 5
    pts = [int(x) for x in np.cumsum([0, *gaps[:29]])]
    levels = [8 * k for k in range(30)]
    path = write_levels(tmp_path / "vfr.mp4", levels, pts_ms=pts, gop=3)
    frames = sample_frames(path, 6, max_pixels=None)
    assert list(frames.indices) == uniform_indices(30, 6)
    assert frames.timestamps == pytest.approx([pts[i] / 1000 for i in frames.indices], abs=1e-3)
    assert [round(float(p.mean()) / 8) for p in frames.pixels] == list(frames.indices)
    assert frames.duration >= frames.timestamps[-1]
    assert frames.source_fps == pytest.approx(30 / frames.duration, rel=0.05)


def test_decoding_without_seeks_gives_the_same_frames(tmp_path):
    """The fallback path (no seeks) agrees with the seeking one, frame for frame."""
    path = write_levels(tmp_path / "gop.mp4", [8 * k for k in range(30)], gop=4)
    index = video_decode._index(path)
    targets = [index.pts[i] for i in uniform_indices(30, 7)]
    seeking, linear = (video_decode._decode(path, targets, index, seek=s) for s in (True, False))
    assert sorted(seeking) == sorted(linear) == targets
    for t in targets:
        assert np.array_equal(seeking[t], linear[t])


def test_a_frame_is_found_by_its_exact_timestamp_or_reported_missing(tmp_path):
    """The decoder never hands over the next frame in place of one that did not come out."""
    path = write_levels(tmp_path / "few.mp4", [8 * k for k in range(10)], gop=4)
    index = video_decode._index(path)
    for seek in (True, False):
        with pytest.raises(video_decode._Missed) as missed:
            video_decode._decode(path, [index.pts[2], index.pts[5] + 1], index, seek=seek)
        assert missed.value.pts == index.pts[5] + 1


def test_frames_are_resized_to_the_pixel_budget_keeping_the_aspect(tmp_path):
    video = write_scene_video(moving_scene(), tmp_path / "big.mp4", size=(320, 240), fps=4.0, duration=1.0)
    for max_pixels in (28 * 28 * 20, 28 * 28 * 64):
        frames = sample_frames(video.path, 3, max_pixels=max_pixels, min_pixels=28 * 28)
        height, width = frames.size
        assert height % 28 == 0 and width % 28 == 0 and height * width <= max_pixels
        # Aspect kept: each side is the exact-aspect side at the budget, rounded down to a multiple of 28.
        scale = (max_pixels / (240 * 320)) ** 0.5
        assert 0 <= 240 * scale - height < 28 and 0 <= 320 * scale - width < 28
        assert (height, width) == smart_resize(240, 320, min_pixels=28 * 28, max_pixels=max_pixels)
        assert frames.pixels.shape == (3, height, width, 3)
    assert sample_frames(video.path, 3, max_pixels=28 * 28 * 20, min_pixels=28 * 28).size == (84, 140)
    # The budget's lower end scales a small video up.
    assert sample_frames(video.path, 3, max_pixels=10**6, min_pixels=400 * 300).size == (308, 420)


def test_smart_resize_agrees_with_transformers():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as reference

    budgets = [(56 * 56, 28 * 28 * 1280), (128 * 28 * 28, 768 * 28 * 28), (28 * 28, 28 * 28 * 4), (4 * 10**5, 10**6)]
    for height in (1, 13, 27, 28, 48, 100, 240, 479, 720, 1080, 2160):
        for width in (1, 29, 64, 333, 640, 1280, 3840):
            if max(height, width) / min(height, width) > 200:
                continue
            for lo, hi in budgets:
                assert smart_resize(height, width, min_pixels=lo, max_pixels=hi) == \
                    reference(height, width, 28, min_pixels=lo, max_pixels=hi), (height, width, lo, hi)
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2010)


# --------------------------------------------------------------------------------------- frame images


def write_images(folder, count, *, names="frame_{}.png"):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(1, count + 1):
        path = folder / names.format(k)
        Image.fromarray(np.full((30, 40, 3), 10 * k, np.uint8)).save(path)
        paths.append(path)
    return paths


def test_folder_of_frames_is_read_in_natural_order(tmp_path):
    write_images(tmp_path / "f", 12)
    (tmp_path / "f" / "notes.txt").write_text("not a frame")
    frames = sample_frames(tmp_path / "f", 4, max_pixels=None, fps=2.0)
    assert frames.indices == (0, 4, 7, 11)
    assert [int(p[0, 0, 0]) for p in frames.pixels] == [10, 50, 80, 120]  # frame_1, 5, 8, 12: not frame_10
    assert frames.timestamps == (0.0, 2.0, 3.5, 5.5)
    assert (frames.duration, frames.total_frames, frames.source_fps, frames.backend) == (6.0, 12, 2.0, "pil")
    resized = sample_frames(tmp_path / "f", 4, max_pixels=28 * 28 * 16, min_pixels=28 * 28 * 4)  # scaled up
    assert resized.size == (56, 84) == smart_resize(30, 40, max_pixels=28 * 28 * 16, min_pixels=28 * 28 * 4)
    assert sample_frames(tmp_path / "f", 2, max_pixels=None).timestamps == (0.0, 11.0)  # 1 fps by default


def test_list_of_frames_keeps_its_order(tmp_path):
    paths = write_images(tmp_path / "l", 6)[::-1]
    frames = sample_frames([str(p) for p in paths], 3, max_pixels=None)
    assert [int(p[0, 0, 0]) for p in frames.pixels] == [60, 40, 10]  # indices 0, 2 (2.5 rounds to even), 5
    assert frames.indices == (0, 2, 5) and frames.total_frames == 6


# ------------------------------------------------------------------------------------------ bad videos


def audio_only(path):
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        for k in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, k * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture
def bad_videos(tmp_path, scene_video):
    data = scene_video.path.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (tmp_path / "empty").mkdir()
    frames = write_images(tmp_path / "some", 3)
    return {
        "missing": (str(tmp_path / "nowhere.mp4"), "no such video file"),
        "truncated": (str(truncated), "not a readable video container"),
        "noise": (str(noise), "not a readable video container"),
        "audio": (str(audio_only(tmp_path / "audio.m4a")), r"no video stream \(streams: audio\)"),
        "empty folder": (str(tmp_path / "empty"), "no frame images"),
        "missing image": ([str(frames[0]), str(tmp_path / "gone.png"), str(frames[2])], "no such frame image"),
        "short": (str(scene_video.path), "16 frames, fewer than the 20 asked"),
    }


def test_each_bad_video_is_a_video_error_naming_the_item_and_the_file(bad_videos):
    for kind, (video, reason) in bad_videos.items():
        with pytest.raises(VideoError, match=reason) as caught:
            load_record_frames(record(video, f"id-{kind}"), 20 if kind == "short" else 3, max_pixels=None)
        error = caught.value
        assert error.item_id == f"id-{kind}" and str(error).startswith(f"item 'id-{kind}': ")
        named = video if isinstance(video, str) else str(error.source)
        assert named in str(error) and error.source in str(error), kind
    with pytest.raises(VideoError, match="has no video"):
        load_record_frames(Record(id="x", question="q?", reference=MC), 2)


def test_truncated_file_with_its_index_first_is_a_corrupt_error(tmp_path):
    """A streaming mp4 (index at the front) cut short opens, but its later frames are gone."""
    path = tmp_path / "fast.mp4"
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream(video_codec(), rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        noise = np.random.default_rng(1)
        for _ in range(40):  # noise: frames big enough that half the file is half the frames
            container.mux(stream.encode(av.VideoFrame.from_ndarray(
                noise.integers(0, 256, (48, 64, 3), dtype=np.uint8), format="rgb24")))
        container.mux(stream.encode(None))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"item 'cut': .*fast\.mp4: corrupt"):
        load_record_frames(record(str(path), "cut"), 8, max_pixels=None)


def test_loader_counts_failures_and_skips_only_with_the_flag(tmp_path, scene_video):
    good, bad = record(str(scene_video.path), "good"), record(str(tmp_path / "gone.mp4"), "bad")
    strict = VideoLoader(4, max_pixels=None)
    with pytest.raises(VideoError, match="item 'bad'"):
        strict(bad)
    assert len(strict.failures) == 1
    lenient = VideoLoader(4, skip_bad=True, max_pixels=None)
    results = [lenient(r) for r in (good, bad, good, bad)]
    assert [r is None for r in results] == [False, True, False, True]
    assert lenient.loaded == 2 and [f.item_id for f in lenient.failures] == ["bad", "bad"]
    relative = VideoLoader(4, root=scene_video.path.parent, max_pixels=None)
    assert relative(record(scene_video.path.name)) is not None


# ------------------------------------------------------------------------------------ Qwen2.5-VL patches


def frames_of(pixels, fps=2.0):
    n = len(pixels)
    return Frames(pixels=np.ascontiguousarray(pixels, dtype=np.uint8), timestamps=tuple(i / fps for i in range(n)),
                  indices=tuple(range(n)), source_fps=fps, duration=n / fps, total_frames=n, source="made")


def test_patch_layout_on_a_hand_made_case():
    """2 frames of 28x28: each 14x14 quadrant q of frame t, channel c, holds 100 t + 10 q + c. The
    four patches of the merge window are rows 0-3 in the order (top left, top right, bottom left,
    bottom right); each row is channel, then frame, then 14 x 14 pixels (196 values)."""
    pixels = np.zeros((2, 28, 28, 3), np.uint8)
    for t in range(2):
        for q, (y, x) in enumerate([(0, 0), (0, 14), (14, 0), (14, 14)]):
            for c in range(3):
                pixels[t, y:y + 14, x:x + 14, c] = 100 * t + 10 * q + c
    out = qwen2_5_vl_video_inputs(frames_of(pixels), image_mean=(0, 0, 0), image_std=(1, 1, 1), rescale=1.0)
    rows = out["pixel_values_videos"]
    assert rows.shape == (4, 1176) and out["video_grid_thw"].tolist() == [[1, 2, 2]]
    for q in range(4):
        for c in range(3):
            for t in range(2):
                block = rows[q, (c * 2 + t) * 196:(c * 2 + t + 1) * 196]
                assert block.eq(100 * t + 10 * q + c).all(), (q, c, t)
    assert rows[2, 196].item() == 120 and rows[1, 392].item() == 11 and rows[3, 1175].item() == 132


def test_patch_layout_matches_its_definition_with_padding_and_normalisation():
    """3 frames (padded to 4 with the last) of 56x84: every value checked against where it comes from."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 56, 84, 3), dtype=np.uint8)
    out = qwen2_5_vl_video_inputs(frames_of(pixels))
    rows = out["pixel_values_videos"].numpy()
    grid_t, grid_h, grid_w = out["video_grid_thw"][0].tolist()
    assert (grid_t, grid_h, grid_w) == (2, 4, 6) and rows.shape == (2 * 4 * 6, 1176)
    normalised = (pixels.astype(np.float64) / 255 - CLIP_MEAN) / CLIP_STD
    padded = np.concatenate([normalised, normalised[-1:]])
    row = 0
    for gt in range(grid_t):
        for hb in range(grid_h // 2):
            for wb in range(grid_w // 2):
                for hm in range(2):
                    for wm in range(2):
                        y, x = (2 * hb + hm) * 14, (2 * wb + wm) * 14
                        want = padded[2 * gt:2 * gt + 2, y:y + 14, x:x + 14, :].transpose(3, 0, 1, 2).reshape(-1)
                        np.testing.assert_allclose(rows[row], want, atol=1e-5)
                        row += 1
    assert out["second_per_grid_ts"].tolist() == [1.0]  # 2 frames a temporal patch at 2 fps


def test_patches_and_sizes_match_transformers_pil_image_processor(scene_video):
    """One frame is a one-frame video: transformers' PIL-backend image processor (no torchvision)
    resizes it from the source and patches it as the video processor does; ours must agree."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    source = sample_frames(scene_video.path, 3, max_pixels=None)
    budget = {"min_pixels": 28 * 28, "max_pixels": 28 * 28 * 6}
    ours = sample_frames(scene_video.path, 3, **budget)
    processor = Qwen2VLImageProcessorPil(**budget)
    for k in range(3):
        theirs = processor(images=[source.pixels[k]], return_tensors="pt")
        one = frames_of(ours.pixels[k:k + 1])
        mine = qwen2_5_vl_video_inputs(one)
        assert mine["video_grid_thw"].tolist() == theirs["image_grid_thw"].tolist()
        assert mine["pixel_values_videos"].shape == theirs["pixel_values"].shape
        assert (mine["pixel_values_videos"] - theirs["pixel_values"]).abs().max() < 1e-5


def test_patches_match_transformers_video_processor_where_it_imports(scene_video):
    try:
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
    except ImportError as exc:  # transformers 5.x: the module imports torchvision.transforms.v2.functional
        pytest.skip(f"transformers' Qwen2VLVideoProcessor does not import here: {exc!r}")
    frames = sample_frames(scene_video.path, 5, min_pixels=28 * 28, max_pixels=28 * 28 * 6)
    processor = Qwen2VLVideoProcessor(min_pixels=28 * 28, max_pixels=28 * 28 * 6)
    theirs = processor(videos=[frames.pixels], video_metadata=[frames.metadata()], do_sample_frames=False,
                       return_tensors="pt")
    mine = qwen2_5_vl_video_inputs(frames)
    assert mine["video_grid_thw"].tolist() == theirs["video_grid_thw"].tolist()
    assert (mine["pixel_values_videos"] - theirs["pixel_values_videos"]).abs().max() < 1e-5


def test_metadata_is_transformers_video_metadata_and_gives_the_same_time_per_patch(scene_video):
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
    from transformers.video_utils import VideoMetadata

    assert (list(CLIP_MEAN), list(CLIP_STD)) == (list(OPENAI_CLIP_MEAN), list(OPENAI_CLIP_STD))
    frames = sample_frames(scene_video.path, 5, min_pixels=28 * 28, max_pixels=28 * 28 * 6)
    meta = VideoMetadata(**frames.metadata())
    assert meta.timestamps == pytest.approx(list(frames.timestamps))
    # Qwen2.5-VL's processor: second_per_grid_ts = temporal_patch_size / metadata.sampled_fps.
    assert qwen2_5_vl_video_inputs(frames)["second_per_grid_ts"].tolist() == pytest.approx([2 / meta.sampled_fps])


def test_prompt_placeholders_follow_the_grid(scene_video):
    frames = sample_frames(scene_video.path, 5, min_pixels=28 * 28, max_pixels=28 * 28 * 6)
    grid = qwen2_5_vl_video_inputs([frames, frames])["video_grid_thw"]
    assert grid.tolist() == [[3, 4, 4], [3, 4, 4]] and video_token_counts(grid) == [12, 12]
    text = "<|vision_start|><|video_pad|><|vision_end|> and <|video_pad|> ?"
    expanded = expand_video_tokens(text, grid)
    assert expanded.count("<|video_pad|>") == 24 and expanded.endswith("<|vision_end|> and " + "<|video_pad|>" * 12 + " ?")
    with pytest.raises(ValueError, match=re.escape("1 <|video_pad|> tokens for 2 videos")):
        expand_video_tokens("<|video_pad|>", grid)
    with pytest.raises(ValueError, match="not multiples of 28"):
        qwen2_5_vl_video_inputs(sample_frames(scene_video.path, 2, max_pixels=None))


def test_a_tiny_qwen2_5_vl_takes_the_inputs_and_sees_the_video(scene_video):
    """transformers' Qwen2.5-VL (random, built from a config in code) runs on our patches and
    placeholders, its output depends on the frames, and generate() takes a left-padded batch of two
    videos with several samples per prompt (it splits and repeats the video inputs per prompt)."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config={"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 512,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                     "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0},
        vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 32, "num_heads": 2, "out_hidden_size": 32,
                       "fullatt_block_indexes": [0], "window_size": 56},
        image_token_id=59, video_token_id=60, vision_start_token_id=61, vision_end_token_id=62)
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    frames = sample_frames(scene_video.path, 4, min_pixels=28 * 28, max_pixels=28 * 28 * 6)
    inputs = qwen2_5_vl_video_inputs(frames)
    ids = torch.tensor([[5, 61] + [60] * video_token_counts(inputs["video_grid_thw"])[0] + [62, 7, 8]])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **inputs).logits
        other = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                      **{**inputs, "pixel_values_videos": inputs["pixel_values_videos"].flip(0)}).logits
        short = sample_frames(scene_video.path, 2, min_pixels=28 * 28, max_pixels=28 * 28 * 6)
        batch = qwen2_5_vl_video_inputs([frames, short])
        prompts = [[5, 61] + [60] * n + [62, 7, 8] for n in video_token_counts(batch["video_grid_thw"])]
        width = max(map(len, prompts))
        padded = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
        generated = model.generate(input_ids=padded, attention_mask=(padded != 0).long(), **batch, max_new_tokens=3,
                                   do_sample=True, num_return_sequences=2)
    assert logits.shape == (1, ids.shape[1], 64) and torch.isfinite(logits).all()
    assert (logits[0, -1] - other[0, -1]).abs().max() > 1e-4
    assert generated.shape == (4, width + 3)


# ---------------------------------------------------------------------------------- synthetic datasets


def test_scene_video_moves_objects_in_straight_lines_between_the_scene_frames(scene_video):
    scene, mover = scene_video.scene, scene_video.scene.movers[0]
    per_frame = scene_video.duration / (scene.frames[-1] + scene.frames[1] - scene.frames[0])  # seconds a frame number
    for a, b in zip(scene.frames, scene.frames[1:], strict=False):
        start, end = scene.positions[a][mover], scene.positions[b][mover]
        assert scene_video.positions_at(a * per_frame)[mover] == pytest.approx(start[:2])
        midway = scene_video.positions_at((a + b) / 2 * per_frame)[mover]
        assert midway == pytest.approx([(start[0] + end[0]) / 2, (start[1] + end[1]) / 2])
    last = scene.positions[scene.frames[-1]][mover]
    assert scene_video.positions_at(scene_video.duration)[mover] == pytest.approx(last[:2])  # held after the last


def test_scene_video_records_are_loadable_tasks_with_graphs(tmp_path):
    records = scene_video_records(3, seed=5, folder=tmp_path, task_types=("multiple_choice", "numerical"),
                                  duration=1.0)
    assert [r.id for r in records] == ["vid5-0", "vid5-1", "vid5-2"]
    loader = VideoLoader(4, min_pixels=28 * 28, max_pixels=28 * 28 * 4)
    for r in records:
        assert "graph" in r.reference and "Options:" not in r.question
        frames = loader(r)
        assert frames is not None and frames.total_frames == 8 and frames.duration == 1.0
    with pytest.raises(ValueError, match="no 'track_iou'"):
        scene_video_records(1, seed=5, folder=tmp_path, task_types=("track_iou",))
