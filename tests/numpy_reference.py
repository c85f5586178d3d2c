"""Independent NumPy references, written in NCHW from the official op definitions.

Deliberately naive (explicit zero insertion, padding, loops over kernel taps, scatter-add
for transposed convolutions) so they share no code or layout tricks with jaxstyle.
"""

import numpy as np


def upfirdn2d(x, f, up=1, down=1, pad=(0, 0, 0, 0), gain=1.0, flip_filter=False):
    """NCHW: zero-insert by `up`, pad (x0, x1, y0, y1) (negative crops), convolve with f, keep every `down`."""
    n, c, h, w = x.shape
    z = np.zeros((n, c, h * up, w * up), x.dtype)
    z[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    z = np.pad(z, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    z = z[:, :, max(-py0, 0): z.shape[2] - max(-py1, 0), max(-px0, 0): z.shape[3] - max(-px1, 0)]
    f = np.asarray(f, np.float64) * gain
    if not flip_filter:
        f = f[::-1, ::-1]  # true convolution = correlation with the flipped filter
    fh, fw = f.shape
    oh, ow = z.shape[2] - fh + 1, z.shape[3] - fw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(fh):
        for j in range(fw):
            out += f[i, j] * z[:, :, i:i + oh, j:j + ow]
    return out[:, :, ::down, ::down]


def conv2d(x, w, stride=1, pad=0):
    """NCHW cross-correlation with OIHW weights (torch.nn.functional.conv2d)."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    o, i, kh, kw = w.shape
    oh, ow = (x.shape[2] - kh) // stride + 1, (x.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], o, oh, ow))
    for a in range(kh):
        for b in range(kw):
            patch = x[:, :, a:a + stride * oh:stride, b:b + stride * ow:stride]
            out += np.einsum("nihw,oi->nohw", patch, w[:, :, a, b])
    return out


def conv_transpose2d(x, wt, stride=2):
    """NCHW transposed convolution with (in, out, kh, kw) weights, padding 0 (scatter-add)."""
    n, i, h, w = x.shape
    _, o, kh, kw = wt.shape
    out = np.zeros((n, o, (h - 1) * stride + kh, (w - 1) * stride + kw))
    for a in range(kh):
        for b in range(kw):
            out[:, :, a:a + stride * h:stride, b:b + stride * w:stride] += np.einsum(
                "nihw,io->nohw", x, wt[:, :, a, b])
    return out


def FIR():
    f = np.outer([1, 3, 3, 1], [1, 3, 3, 1]).astype(np.float64)
    return f / f.sum()


def modulated_conv2d(x, weight, styles, demodulate=True, up=1):
    """NCHW StyleGAN2 modulated conv by explicit per-sample weights (OIHW raw weight)."""
    outs = []
    for b in range(x.shape[0]):
        w = weight * styles[b][None, :, None, None]
        if demodulate:
            w = w / np.sqrt((w**2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)
        xb = x[b:b + 1]
        if up == 1:
            outs.append(conv2d(xb, w, pad=weight.shape[-1] // 2))
        else:  # transposed conv with the (unflipped) kernel, then the [1,3,3,1] filter, gain 4
            y = conv_transpose2d(xb, w.transpose(1, 0, 2, 3), stride=2)
            outs.append(upfirdn2d(y, FIR(), pad=(1, 1, 1, 1), gain=4))
    return np.concatenate(outs)


def minibatch_stddev(x, group_size, num_channels=1):
    """NCHW official MinibatchStdLayer: strided groups (sample i joins group i % n)."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    f = num_channels
    y = x.reshape(g, n // g, f, c // f, h, w)
    y = np.sqrt(((y - y.mean(0)) ** 2).mean(0) + 1e-8).mean(axis=(2, 3, 4))  # (n/g, F)
    y = np.tile(y, (g, 1))[:, :, None, None] * np.ones((1, 1, h, w))
    return np.concatenate([x, y], axis=1)
