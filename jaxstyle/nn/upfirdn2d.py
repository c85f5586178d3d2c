"""FIR resampling: upsample, pad, filter, downsample (official `upfirdn2d`), NHWC.

Padding is given as (x0, x1, y0, y1) like the official code; negative values crop.
The filter is correlated after a flip (true convolution) unless `flip_filter=True`,
exactly as in the official op.

Two formulations compute the same thing:
  - "separable": every filter the networks use is an outer product (f = fy fx^T), so the
    op is one `lax.pad` (zero insertion, padding and cropping at once) followed by two
    1-D passes, each a sum of kh (kw) strided slices scaled by the filter taps. XLA fuses
    them into one elementwise loop.
  - "conv": one depthwise `conv_general_dilated`, `lhs_dilation` inserting the zeros and
    `window_strides` dropping the samples.
On XLA CPU the depthwise convolution is the slow one by far (benchmarks/fir.py: 32x32x32x64,
[1,3,3,1]: 70 ms against 1.7 ms forward, 232 against 20 ms for the input gradient), so
"auto" uses the separable form on CPU and the library convolution on GPU and TPU, where it
was the measured default. $JAXSTYLE_FIR=separable|conv overrides; a filter that is not an
outer product always takes the convolution.
"""

import os

import numpy as np

import jax
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


def separable_factors(f):
    """Returns (fy, fx), 1-D float64 with outer(fy, fx) == f to float32 rounding, or None if the
    2-D filter f is not an outer product."""
    f = np.asarray(f, dtype=np.float64)
    i, j = np.unravel_index(np.argmax(np.abs(f)), f.shape)
    if f[i, j] == 0:
        return None
    fy, fx = f[:, j] / f[i, j], f[i, :]
    return (fy, fx) if np.allclose(np.outer(fy, fx), f, rtol=1e-6, atol=1e-7 * abs(f[i, j])) else None


def fir_impl(f):
    """Returns "separable" or "conv": the formulation upfirdn2d uses for filter f on this backend."""
    setting = os.environ.get("JAXSTYLE_FIR", "auto")
    if setting not in ("auto", "separable", "conv"):
        raise ValueError(f"$JAXSTYLE_FIR must be auto, separable or conv, got {setting!r}")
    if separable_factors(f) is None:
        return "conv"
    if setting == "auto":
        return "separable" if jax.default_backend() == "cpu" else "conv"
    return setting


def _filter_axis(x, taps, axis, down):
    """Returns the valid correlation of x with the 1-D `taps` along `axis`, keeping every down-th output."""
    n = (x.shape[axis] - len(taps)) // down + 1
    return sum(lax.slice_in_dim(x, k, k + (n - 1) * down + 1, down, axis) * jnp.asarray(tap, x.dtype)
               for k, tap in enumerate(taps))


def _separable(x, fy, fx, up, down, padding):
    px0, px1, py0, py1 = padding
    zero = jnp.zeros((), x.dtype)
    # Zero insertion gives n * up samples (the official op's trailing zeros), then the padding.
    x = lax.pad(x, zero, ((0, 0, 0), (py0, py1 + up - 1, up - 1), (px0, px1 + up - 1, up - 1), (0, 0, 0)))
    x = _filter_axis(x, fy, 1, down)
    return _filter_axis(x, fx, 2, down)


def _depthwise(x, f, up, down, padding):
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


def upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), flip_filter=False, gain=1.0, impl=None):
    """Returns x upsampled by zero insertion, padded, FIR-filtered and downsampled (NHWC).

    impl: "separable" or "conv" (see the module docstring); None picks by `fir_impl`.
    """
    f = np.asarray(f, dtype=np.float32) * gain
    if not flip_filter:
        f = f[::-1, ::-1]
    padding = tuple(int(p) for p in padding)
    if (impl or fir_impl(f)) == "separable":
        factors = separable_factors(f)
        if factors is None:
            raise ValueError(f"the separable upfirdn2d needs an outer-product filter, got\n{f}")
        return _separable(x, *factors, up, down, padding)
    return _depthwise(x, f, up, down, padding)


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
