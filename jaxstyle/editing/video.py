"""Animations: paths through keyframes (gen_video.py timing, z slerp or w lerp), and writing
frames to disk as an animated GIF with Pillow, or an MP4 when imageio-ffmpeg is installed.

No ffmpeg is needed for GIFs. Both writers go through a temporary file beside the target that
is renamed into place, so an error never leaves a half-written video. GIF stores frame times in
hundredths of a second, so fps above 50 cannot be shown (and browsers slow frames under 20 ms).
Pillow merges consecutive frames that are identical after colour quantisation into one longer
frame; the frame count on disk can then be smaller than the number of frames given.
"""

import importlib.util
import os
import tempfile

import numpy as np
from PIL import Image

SUFFIXES = (".gif", ".mp4")
MAX_GIF_FPS = 50


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def slerp(a, b, t):
    """Returns the point t of the way along the great circle from a/|a| to b/|b| (unit norm);
    a/|a| where the two (nearly) coincide."""
    a, b = _unit(np.asarray(a, np.float64)), _unit(np.asarray(b, np.float64))
    t = np.asarray(t, np.float64)[..., None]
    cos = np.clip(np.sum(a * b, axis=-1, keepdims=True), -1.0, 1.0)
    ortho = b - cos * a  # b's part orthogonal to a: the circle's second axis
    norm = np.linalg.norm(ortho, axis=-1, keepdims=True)
    c = np.where(norm > 1e-12, ortho / np.maximum(norm, 1e-300), 0.0)
    angle = t * np.arccos(cos)
    return (a * np.cos(angle) + c * np.sin(angle)).astype(np.float32)


def lerp(a, b, t):
    """Returns a + t (b - a) (t broadcast against a and b)."""
    a = np.asarray(a, np.float32)
    return (a + np.asarray(t, np.float32) * (np.asarray(b, np.float32) - a)).astype(np.float32)


def transitions(num_keys, steps, loop=True):
    """Returns (start, end, t) per frame: frame f lies t of the way from keyframe start to end.

    A loop has num_keys * steps frames and closes back to keyframe 0 (gen_video.py); otherwise
    (num_keys - 1) * steps + 1 frames, the last on the last keyframe.
    """
    if num_keys < 2:
        raise ValueError(f"an interpolation needs at least 2 keyframes (seeds per cell), got {num_keys}")
    if steps < 1:
        raise ValueError(f"steps (frames per transition) must be positive, got {steps}")
    frames = np.arange(num_keys * steps if loop else (num_keys - 1) * steps + 1)
    start = np.minimum(frames // steps, num_keys - 1)
    end = (start + 1) % num_keys if loop else np.minimum(start + 1, num_keys - 1)
    return start, end, (frames - start * steps) / steps


def keyframe_path(keys, steps, loop=True, kind="lerp"):
    """Returns frames (F, ...) through keys (K, ...): lerp, or slerp along the last axis."""
    start, end, t = transitions(len(keys), steps, loop)
    keys = np.asarray(keys, np.float32)
    t = t.reshape((-1,) + (1,) * (keys.ndim - 1))  # (F, 1, ..., 1)
    if kind == "slerp":
        return slerp(keys[start], keys[end], t[..., 0])
    return lerp(keys[start], keys[end], t)


def check_frames(frames):
    """Returns frames as a uint8 array (F, H, W, 3); raises ValueError for anything else."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"expected uint8 frames (F, H, W, 3) with F >= 1, got {frames.dtype} {frames.shape}")
    return frames


def mp4_available():
    """Returns True when imageio-ffmpeg (which ships an ffmpeg binary) can be imported."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def check_video_path(path):
    """Returns path; raises ValueError unless it ends in .gif, or .mp4 with imageio-ffmpeg installed."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: an animation is written as .gif (or .mp4 with imageio-ffmpeg); "
                         "change the file name")
    if suffix == ".mp4" and not mp4_available():
        raise ValueError(f"{path}: writing MP4 needs the imageio-ffmpeg package "
                         "(pip install imageio-ffmpeg); or write a .gif")
    return path


def write_gif(frames, path, fps=24, loop=0):
    """Writes frames (F, H, W, 3) uint8 as an animated GIF playing `loop` times (0 = forever);
    returns the path."""
    frames = check_frames(frames)
    if not 0 < fps <= MAX_GIF_FPS:
        raise ValueError(f"fps must be in (0, {MAX_GIF_FPS}] for a GIF (frame times are hundredths "
                         f"of a second), got {fps}")
    if loop < 0:
        raise ValueError(f"loop must be 0 (forever) or a positive count, got {loop}")
    images = [Image.fromarray(f) for f in frames]

    def write(tmp):
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=round(1000 / fps), loop=loop)
    return _atomic(path, ".gif", write)


def write_mp4(frames, path, fps=24):
    """Writes frames (F, H, W, 3) uint8 as an H.264 MP4 through imageio-ffmpeg; returns the path."""
    frames = check_frames(frames)
    check_video_path(path)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"MP4 (yuv420p) needs even frame sides, got {w}x{h}; write a .gif")
    import imageio_ffmpeg

    def write(tmp):
        # yuv420p needs even sides; macro_block_size 1 keeps the frames unscaled otherwise.
        writer = imageio_ffmpeg.write_frames(tmp, (w, h), fps=fps, macro_block_size=1)
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
    return _atomic(path, ".mp4", write)


def write_video(frames, path, fps=24):
    """Writes frames as a GIF or an MP4, chosen by the suffix of path; returns the path."""
    check_video_path(path)
    if os.fspath(path).lower().endswith(".mp4"):
        return write_mp4(frames, path, fps)
    return write_gif(frames, path, fps)


def _atomic(path, suffix, write):
    """Runs write(tmp) on a temporary file beside path and renames it to path; returns path."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tmp" + suffix, dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates private files; a video is for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
