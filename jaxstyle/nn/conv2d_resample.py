"""2-D convolution with optional FIR up/downsampling (official `conv2d_resample`), NHWC.

Kernels are HWIO. `flip_weight=True` means cross-correlation (what torch.conv2d and
lax.conv compute); every official layer passes `flip_weight = (up == 1)`. The fast paths
of the official op are followed one by one so that results match to float rounding:
1x1 + down filters first, 1x1 + up convolves first, down uses a strided convolution after
filtering, up uses a transposed (input-dilated) convolution followed by filtering.
"""

import numpy as np

from jaxstyle.nn.conv import conv
from jaxstyle.nn.upfirdn2d import upfirdn2d


def _conv(x, w, stride=1, padding=(0, 0), groups=1, dilate_input=1, flip_weight=True):
    """Returns the correlation of x with w (w spatially flipped first if not flip_weight)."""
    if not flip_weight:
        w = w[::-1, ::-1]
    py, px = padding
    return conv(x, w.astype(x.dtype), stride, ((py, py), (px, px)), dilate_input, groups)


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True):
    """Returns conv(x, w) with FIR resampling by `up`/`down` using filter f (NHWC, HWIO)."""
    kh, kw = w.shape[0], w.shape[1]
    fh, fw = np.shape(f) if f is not None else (1, 1)
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=(px0, px1, py0, py1))
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=(px0, px1, py0, py1), gain=up * up)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=(px0, px1, py0, py1))
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        # torch's conv_transpose2d(x, w^T, padding=p) equals correlating the zero-inserted
        # input with the spatially flipped kernel, padded by k - 1 - p. The official code
        # flips the kernel beforehand when flip_weight is set, so the flips cancel there.
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, padding=(kh - 1 - pyt, kw - 1 - pxt), groups=groups,
                  dilate_input=up, flip_weight=flip_weight)
        x = upfirdn2d(x, f, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up * up)
        if down > 1:
            x = upfirdn2d(x, f, down=down)
        return x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=(py0, px0), groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, f if f is not None else np.ones((1, 1), np.float32),
                  padding=(px0, px1, py0, py1))
    return _conv(x, w, groups=groups, flip_weight=flip_weight)
