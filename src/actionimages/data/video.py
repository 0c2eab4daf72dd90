"""Episode videos through PyAV: encode, append (remux, no re-encoding) and decode by frame.

A LeRobot v3 video file holds several episodes one after another; an episode is the
span ``[from_timestamp, to_timestamp)`` of the file's time line, and frame ``i`` of the
episode is shown at ``from_timestamp + i / fps``. Appending an episode therefore copies
the existing compressed packets untouched and shifts the new episode's packets by the
file's current duration: earlier episodes decode to exactly the same pixels as before.

B-frames are disabled (H.264 ``bf=0``; SVT-AV1 emits packets in display order) so that
decode order equals display order, which keeps the concatenated time line monotonic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

# SVT-AV1 prints its whole configuration to stderr for every file unless told not to.
os.environ.setdefault("SVT_LOG", "1")

CODECS = {"av1": "libsvtav1", "h264": "libx264"}


@dataclass(frozen=True)
class VideoConfig:
    """How episode videos are compressed.

    Attributes:
        codec: "av1" (SVT-AV1, LeRobot's default) or "h264" (libx264).
        crf: constant rate factor; lower is better quality and bigger files.
        gop: frames between key frames. Random access decodes from the previous key
            frame, so a short GOP makes clip sampling faster and files bigger.
        preset: encoder speed preset (SVT-AV1: 0-13, x264: "ultrafast".."veryslow").
        pix_fmt: "yuv420p" (what LeRobot writes; halves chroma resolution) or
            "yuv444p" (full chroma, for tiny images where colour detail matters).
    """

    codec: str = "av1"
    crf: int = 30
    gop: int = 8
    preset: str = "8"
    pix_fmt: str = "yuv420p"

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"video codec must be one of {sorted(CODECS)}, got {self.codec!r}")
        if self.pix_fmt not in ("yuv420p", "yuv444p"):
            raise ValueError(f"pix_fmt must be 'yuv420p' or 'yuv444p', got {self.pix_fmt!r}")
        if self.gop < 1:
            raise ValueError(f"gop must be >= 1, got {self.gop}")

    @classmethod
    def lerobot(cls) -> VideoConfig:
        """What LeRobot's recorder writes (AV1, CRF 30, key frame every 2 frames)."""
        return cls(codec="av1", crf=30, gop=2, preset="8")

    @classmethod
    def h264(cls) -> VideoConfig:
        """H.264 for players and tools that cannot decode AV1."""
        return cls(codec="h264", crf=18, gop=8, preset="veryfast")

    @classmethod
    def high_quality(cls) -> VideoConfig:
        """Near-lossless AV1 with full chroma, for small simulator images."""
        return cls(codec="av1", crf=12, gop=8, preset="6", pix_fmt="yuv444p")

    def with_codec(self, codec: str) -> VideoConfig:
        presets = {"av1": "8", "h264": "veryfast"}
        return replace(self, codec=codec, preset=presets[codec])


def encode_video(path: str | Path, frames: np.ndarray, fps: float, config: VideoConfig) -> None:
    """Write (T, H, W, 3) uint8 RGB frames to a new MP4 at ``path`` (not atomic by itself)."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"video frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}"
        )
    T, H, W, _ = frames.shape
    if T == 0:
        raise ValueError("cannot encode a video with no frames")
    if H % 2 or W % 2:
        raise ValueError(
            f"video frames need an even height and width for {config.pix_fmt}, got {H}x{W}"
        )
    options = {"crf": str(config.crf), "g": str(config.gop), "preset": str(config.preset)}
    if config.codec == "h264":
        options["bf"] = "0"  # display order == decode order, see module docstring
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(CODECS[config.codec], rate=_rate(fps))
        stream.width, stream.height, stream.pix_fmt = W, H, config.pix_fmt
        stream.options = options
        try:
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        except av.error.FFmpegError as err:
            raise ValueError(
                f"{config.codec} encoder rejected {H}x{W} frames ({err}); try VideoConfig.h264()"
            ) from err


def _rate(fps: float) -> Fraction:
    rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return rate


def video_duration(path: str | Path) -> float:
    """Seconds covered by the file's frames (end of the last frame), 0 for no file."""

    if not Path(path).is_file():
        return 0.0
    with _open(path) as container:
        stream = container.streams.video[0]
        end = 0
        for packet in container.demux(stream):
            if packet.pts is not None:
                end = max(end, packet.pts + (packet.duration or 0))
        return float(end * stream.time_base)


def concat_videos(inputs: list[Path], output: Path) -> list[float]:
    """Remux ``inputs`` one after another into ``output``; returns each input's start (s).

    Packets are copied (no re-encoding); input k's time stamps are shifted by the sum of
    the durations before it. All inputs must share codec, size and pixel format.
    """
    import av

    starts: list[float] = []
    offset = Fraction(0)
    with av.open(str(output), mode="w", format="mp4") as out:
        out_stream = None
        reference = None
        for path in inputs:
            with _open(path) as src:
                stream = src.streams.video[0]
                signature = (
                    stream.codec_context.name,
                    stream.width,
                    stream.height,
                    stream.format.name,
                )
                if out_stream is None:
                    # opaque=True copies codec parameters without looking up an encoder
                    # (the AV1 stream is opened by the libdav1d decoder, which cannot encode).
                    out_stream = out.add_stream_from_template(stream, opaque=True)
                    reference = signature
                elif signature != reference:
                    raise ValueError(
                        f"cannot append {path}: its video {signature} differs from {reference}; "
                        "all episodes of a dataset must share codec, size and pixel format"
                    )
                starts.append(float(offset))
                end = offset
                for packet in src.demux(stream):
                    if packet.dts is None:  # demuxer's end-of-stream flush packet
                        continue
                    shift = round(offset / packet.time_base)
                    last = Fraction(packet.pts + (packet.duration or 0)) * packet.time_base
                    packet.pts += shift
                    packet.dts += shift
                    packet.stream = out_stream
                    out.mux(packet)
                    end = max(end, offset + last)
                offset = end
    return starts


def _open(path: str | Path):
    import av

    try:
        return av.open(str(path), mode="r")
    except FileNotFoundError:
        raise FileNotFoundError(f"video file {path} is missing") from None
    except av.error.FFmpegError as err:
        raise ValueError(
            f"video file {path} is not a readable MP4 ({err}); is it truncated?"
        ) from err


def read_video(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """All frames (or the first ``max_frames``) of a video file -> (N, H, W, 3) uint8 RGB.

    For user-supplied clips (``actionimages label --videos``); dataset episodes go through
    :func:`decode_frames`, which seeks by time stamp.
    """
    import av

    frames = []
    with _open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        try:
            for frame in container.decode(video=0):
                frames.append(frame)
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except av.error.FFmpegError as err:
            raise ValueError(
                f"video file {path} could not be decoded ({err}); is it corrupt?"
            ) from err
    if not frames:
        raise ValueError(f"video file {path} holds no frames")
    return frames_to_rgb(frames)


def decode_frames(
    path: str | Path, start: float, frame_indices: np.ndarray, fps: float
) -> np.ndarray:
    """Decode episode frames from a (possibly multi-episode) video file.

    Args:
        path: the MP4.
        start: the episode's ``from_timestamp`` in seconds.
        frame_indices: (N,) frame numbers within the episode (any order, repeats ok).
        fps: the dataset's frame rate.

    Returns:
        (N, H, W, 3) uint8 RGB, in the order of ``frame_indices``. Decoding starts at
        the key frame before the earliest requested frame and stops after the latest.
    """
    import av

    wanted = np.asarray(frame_indices, dtype=np.int64)
    if wanted.ndim != 1 or wanted.size == 0:
        raise ValueError(f"frame_indices must be a non-empty 1-D array, got shape {wanted.shape}")
    if wanted.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {wanted.min()}")
    first, last = int(wanted.min()), int(wanted.max())
    needed = set(wanted.tolist())
    got: dict[int, np.ndarray] = {}
    with _open(path) as container:
        if not container.streams.video:  # a truncated file can lose its stream headers
            raise ValueError(f"video file {path} has no video stream; is it truncated?")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        # Seek a little before the frame so rounding of time stamps cannot skip it.
        target = start + (first - 0.5) / fps
        try:
            container.seek(max(0, int(target / tb)), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                index = round((float(frame.pts * tb) - start) * fps)
                if index > last:
                    break
                if index in needed:
                    got[index] = frame
                    if len(got) == len(needed):
                        break
        except av.error.FFmpegError as err:
            raise ValueError(
                f"video file {path} could not be decoded ({err}); is it corrupt?"
            ) from err
    missing = sorted(needed - set(got))
    if missing:
        raise ValueError(
            f"{path}: frames {missing[:5]} of the episode starting at {start:.3f} s are not in "
            "the video; the episode metadata and the video file disagree (truncated file?)"
        )
    order = sorted(got)
    rgb = frames_to_rgb([got[i] for i in order])  # (M, H, W, 3), M distinct frames
    return rgb[np.searchsorted(order, wanted)]  # (N, H, W, 3)


# BT.601 limited range ("MPEG"), what swscale assumes for untagged streams and what the
# encoder above wrote: RGB = 1.164 (Y - 16) + M (U - 128, V - 128).
_BT601 = (1.164383, 1.596027, 0.391762, 0.812968, 2.017232)


def frames_to_rgb(frames: list) -> np.ndarray:
    """Decoded PyAV frames -> (N, H, W, 3) uint8 RGB.

    swscale's yuv420p -> rgb24 conversion costs ~2 ms for a 128 x 128 frame here, ten
    times the decoding itself, so untagged or BT.601 limited-range yuv420p (what this
    package and LeRobot write) is converted in one vectorised pass with nearest-neighbour
    chroma; anything else goes through swscale.
    """
    import torch

    first = frames[0]
    H, W = first.height, first.width
    fast = (
        first.format.name == "yuv420p"
        and H % 2 == 0
        and W % 2 == 0
        and getattr(first, "colorspace", 2) in (2, 5, 6)  # unspecified, BT.470BG, SMPTE170M
        and getattr(first, "color_range", 1) != 2  # not full ("JPEG") range
    )
    if not fast:
        return np.stack([f.to_ndarray(format="rgb24") for f in frames])
    x = torch.from_numpy(np.stack([f.to_ndarray() for f in frames]))  # (N, 3H/2, W) planes
    N, (ky, kr, kgu, kgv, kb) = len(frames), _BT601
    h2, w2 = H // 2, W // 2
    # Y as (N, H/2, 2, W/2, 2) so each chroma sample broadcasts over its 2 x 2 block.
    Y = x[:, :H].float().sub_(16).mul_(ky).reshape(N, h2, 2, w2, 2)
    U = x[:, H : H + H // 4].reshape(N, h2, 1, w2, 1).float().sub_(128)  # (N, H/2, 1, W/2, 1)
    V = x[:, H + H // 4 :].reshape(N, h2, 1, w2, 1).float().sub_(128)
    out = torch.empty(N, h2, 2, w2, 2, 3, dtype=torch.uint8)
    out[..., 0] = (Y + kr * V).round_().clamp_(0, 255)
    out[..., 1] = (Y - kgu * U - kgv * V).round_().clamp_(0, 255)
    out[..., 2] = (Y + kb * U).round_().clamp_(0, 255)
    return out.reshape(N, H, W, 3).numpy()  # (N, H/2, 2, W/2, 2, 3) -> (N, H, W, 3)


def _plain_number(rate) -> float | int | None:
    if not rate:
        return None
    return int(rate) if float(rate).is_integer() else float(rate)


def probe_video(path: str | Path) -> dict:
    """The ``info`` block LeRobot keeps for a video feature in ``meta/info.json``."""
    with _open(path) as container:
        stream = container.streams.video[0]
        return {
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec_context.codec.canonical_name,
            "video.pix_fmt": stream.format.name,
            "video.is_depth_map": False,
            "video.fps": _plain_number(stream.average_rate),
            "video.channels": 3,
            "has_audio": len(container.streams.audio) > 0,
        }
