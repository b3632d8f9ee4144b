"""Decoding real (generated) files: video + audio, sound only, still images, and every bad file."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from core.errors import UserError
from core.features.audio import load_audio
from core.features.decode import DecodeSpec, decode_file
from core.features.errors import CODEC, CORRUPT, EMPTY, NO_AUDIO, NO_VISUAL, NOT_MEDIA, ClipError
from core.features.extract import first_frame
from core.features.video import decode_video
from tests.core.features_fixtures import make_bad_files, make_png, make_video, make_wav, tone_wave


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return {
        "video": make_video(d / "clip.mp4", 3.0),
        "long": make_video(d / "long.mp4", 8.0, size=48),
        "wav": make_wav(d / "sound.wav", 3.0),
        "png": make_png(d / "picture.png"),
        **make_bad_files(d / "bad"),
    }


def test_video_gives_one_frame_per_second_and_the_audio_track(media):
    d = decode_video(media["video"], fps=1.0, size=224, audio_sr=44_100)
    assert d.frames.shape == (3, 224, 224, 3) and d.frames.dtype == np.uint8
    assert d.audio.dtype == np.float32 and d.audio.ndim == 1
    assert abs(len(d.audio) / 44_100 - 3.0) < 0.1
    assert abs(d.duration - 3.0) < 0.1
    assert d.audio_note is None
    assert 0.05 < np.abs(d.audio).max() < 1.0  # the tone survived resampling and downmixing


def test_frame_rate_and_size_follow_the_request(media):
    d = decode_video(media["video"], fps=2.0, size=32)
    assert d.frames.shape == (6, 32, 32, 3)
    assert d.audio is None  # not asked for


def test_skipping_unkept_frames_keeps_the_frames_of_a_full_decode(tmp_path):
    """The decoder skips frames nothing refers to between the kept ones (B-frames): the kept
    frames must be the pixels, times and length a decode of every frame gives."""
    import av

    from core.features.video import frame_to_square

    path = make_video(tmp_path / "clip.mp4", 5.3, fps=25, size=96, height=64, codec="libx264")
    got = decode_video(path, fps=1.5, size=32)
    with av.open(str(path)) as container:
        frames = list(container.decode(container.streams.video[0]))
    assert any(f.pict_type == av.video.frame.PictureType.B for f in frames)  # to skip
    t0 = frames[0].time
    want, times, step = [], [], 1 / 1.5
    for f in frames:
        if f.time - t0 + 1e-6 >= len(want) * step:
            want.append(frame_to_square(f, 32))
            times.append(f.time - t0)
    np.testing.assert_array_equal(got.frames, np.stack(want))
    np.testing.assert_allclose(got.frame_times, times)
    assert got.duration == pytest.approx(frames[-1].time - t0 + 1 / 25)


def test_a_clip_shorter_than_the_frame_step_still_gives_one_frame(media):
    d = decode_video(media["short"], fps=1.0, size=64)
    assert d.frames.shape[0] == 1


def test_max_frames_spreads_samples_over_a_long_video(media):
    d = decode_video(media["long"], fps=1.0, size=32, max_frames=4)
    assert d.frames.shape[0] == 4
    assert d.duration > 7.5  # decoded to the end, not cut at the fourth frame


def test_sound_file_decodes_as_audio_without_picture(media):
    d = decode_file(media["wav"], DecodeSpec(audio_sr=16_000))
    assert d.frames is None and d.visual_note
    assert abs(len(d.audio) - 3 * 16_000) < 200
    y = load_audio(media["wav"], sr=8_000)
    assert y.dtype == np.float32 and abs(len(y) - 24_000) < 100


def test_image_is_a_one_frame_clip_without_sound(media):
    d = decode_file(media["png"], DecodeSpec(frame_size=40))
    assert d.frames.shape == (1, 40, 40, 3) and d.audio is None and d.audio_note
    # the left half of the picture is green (RGB order, not OpenCV's BGR)
    assert d.frames[0, 20, 5, 1] > 120 and d.frames[0, 20, 5, 0] < 60


def test_first_frame_thumbnails(media):
    for key in ("video", "png"):
        thumb = first_frame(media[key], 24)
        assert thumb.shape == (24, 24, 3) and thumb.dtype == np.uint8
    with pytest.raises(ClipError, match="no picture"):
        first_frame(media["wav"], 24)


@pytest.mark.parametrize(
    ("case", "kind", "words"),
    [
        ("empty", EMPTY, "empty file"),
        ("text", NOT_MEDIA, "holds text"),
        ("truncated", CORRUPT, "truncated"),
        ("codec", CODEC, "codec cannot be decoded"),
    ],
)
def test_bad_files_give_a_clip_error_naming_the_file(media, case, kind, words):
    with pytest.raises(ClipError) as info:
        decode_file(media[case], DecodeSpec())
    err = info.value
    assert isinstance(err, UserError)
    assert str(err).startswith(str(media[case]))
    assert err.kind == kind and words in str(err)


def test_cut_stream_is_reported_as_truncated(tmp_path):
    # With the index at the front (faststart) the header survives the cut: the decode stops
    # early, and the file must still be refused rather than silently shortened.
    whole = make_video(tmp_path / "whole.mp4", 4.0, faststart=True).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ClipError, match="truncated") as info:
        decode_file(cut, DecodeSpec())
    assert info.value.kind == CORRUPT


def test_a_file_cut_inside_its_index_is_truncated_not_mute(tmp_path):
    # Cut there, FFmpeg opens the MP4 but finds no audio or video track: the message must say
    # the file is damaged, not send the user looking for a clip without sound.
    whole = make_video(tmp_path / "whole.mp4", 3.0).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: int(len(whole) * 0.8)])
    for read in (lambda: decode_file(cut, DecodeSpec()), lambda: load_audio(cut)):
        with pytest.raises(ClipError, match="truncated or corrupt: no audio or video") as info:
            read()
        assert info.value.kind == CORRUPT and info.value.path == str(cut)


def test_video_without_audio_keeps_the_picture_and_says_why(media):
    d = decode_file(media["no_audio"], DecodeSpec(frame_size=32))
    assert d.frames.shape[0] == 3
    assert d.audio is None and d.audio_note == "no audio track"
    with pytest.raises(ClipError, match="no audio track") as info:
        load_audio(media["no_audio"])
    assert info.value.kind == NO_AUDIO


def test_sound_named_like_a_video_is_decoded_as_sound(tmp_path, media):
    # an .mp4 with only an audio stream (as phones and converters write)
    import av

    path = tmp_path / "voice.mp4"
    with av.open(str(media["wav"])) as src, av.open(str(path), "w") as dst:
        out = dst.add_stream("aac", rate=22_050)
        for frame in src.decode(audio=0):
            frame.pts = None
            for packet in out.encode(frame):
                dst.mux(packet)
        for packet in out.encode():
            dst.mux(packet)
    d = decode_file(path, DecodeSpec())
    assert d.frames is None and d.audio is not None
    with pytest.raises(ClipError) as info:
        first_frame(path)
    assert info.value.kind == NO_VISUAL


def test_clip_error_survives_pickling_between_processes():
    err = pickle.loads(pickle.dumps(ClipError("/x/y.mp4", "broken", CORRUPT)))
    assert (err.path, err.reason, err.kind, str(err)) == (
        "/x/y.mp4",
        "broken",
        CORRUPT,
        "/x/y.mp4: broken",
    )


def test_stereo_is_averaged_to_mono_not_ffmpegs_louder_downmix(tmp_path):
    import soundfile as sf

    y = tone_wave(1.0, 440, 44_100)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([y, 0.5 * y], axis=1), 44_100, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, 44_100), 0.75 * y, atol=1e-6)


@pytest.mark.parametrize("codec", ["libx264", "libvpx-vp9"])
def test_common_web_codecs_decode(tmp_path, codec):
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder to make the clip")
    suffix = ".webm" if "vpx" in codec else ".mp4"
    path = tmp_path / f"clip{suffix}"
    if "vpx" in codec:  # WebM takes Opus/Vorbis, not AAC: picture only here
        make_video(path, 2.0, codec=codec, audio=False)
    else:
        make_video(path, 2.0, codec=codec)
    d = decode_file(path, DecodeSpec(frame_size=32))
    assert d.frames.shape == (2, 32, 32, 3)
    assert (d.audio is not None) == ("vpx" not in codec)
