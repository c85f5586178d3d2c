"""FIR resampling: upsample, pad, filter, downsample (official `upfirdn2d`), NHWC.

Padding is given as (x0, x1, y0, y1) like the official code; negative values crop.
The filter is correlated after a flip (true convolution) unless `flip_filter=True`,
exactly as in the official op. One depthwise `conv_general_dilated` does all four
steps: `lhs_dilation` inserts the zeros and `window_strides` drops the samples.
"""

import numpy as np

import jax.numpy as jnp
from jax import lax


def setup_filter(f=(1, 3, 3, 1), normalize=True):
    """Returns the 2-D float32 FIR filter: the outer product of a 1-D `f`, summing to 1."""
    f = np.asarray(f, dtype=np.float32)
    if f.ndim == 1:
        f = np.outer(f, f)
    if f.ndim != 2:
        raise ValueError(f"resample filter must be 1-D or 2-D, got shape {f.shape}")
    if normalize:
        f = f / f.sum()
    return f


def upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """Returns x upsampled by zero insertion, padded, FIR-filtered and downsampled (NHWC)."""
    f = np.asarray(f, dtype=np.float32) * gain
    if not flip_filter:
        f = f[::-1, ::-1]
    px0, px1, py0, py1 = padding
    channels = x.shape[-1]
    kernel = jnp.asarray(np.tile(f[:, :, None, None], (1, 1, 1, channels)), dtype=x.dtype)
    # lhs_dilation yields (n - 1) * up + 1 samples; the official op yields n * up (trailing
    # zeros), so the far side gets up - 1 extra padding.
    return lax.conv_general_dilated(
        x, kernel,
        window_strides=(down, down),
        padding=((py0, py1 + up - 1), (px0, px1 + up - 1)),
        lhs_dilation=(up, up),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=channels,
    )


def upsample2d(x, f, up=2, gain=1.0):
    """Returns x upsampled by `up` with filter f (output size n * up, image gain preserved)."""
    fh, fw = np.shape(f)
    pad = ((fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2)
    return upfirdn2d(x, f, up=up, padding=pad, gain=gain * up * up)


def downsample2d(x, f, down=2, gain=1.0):
    """Returns x filtered with f and downsampled by `down` (output size n / down)."""
    fh, fw = np.shape(f)
    pad = ((fw - down + 1) // 2, (fw - down) // 2, (fh - down + 1) // 2, (fh - down) // 2)
    return upfirdn2d(x, f, down=down, padding=pad, gain=gain)


def filter2d(x, f, gain=1.0):
    """Returns x filtered with f at the same size."""
    fh, fw = np.shape(f)
    pad = (fw // 2, (fw - 1) // 2, fh // 2, (fh - 1) // 2)
    return upfirdn2d(x, f, padding=pad, gain=gain)
