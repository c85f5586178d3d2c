"""rosinality/stylegan2-pytorch checkpoints -> OfficialWeights.

Reads train.py checkpoints, `torch.save({g, d, g_ema, g_optim, d_optim, args[, ada_aug_p]})`,
and convert_weight.py output, `{g_ema, latent_avg[, g, d]}`. Sizes come from the tensors
(resolution from the ToRGB count, n_mlp from the mapping layers, latent from their width,
channels per resolution from the conv weights); `args` (an argparse.Namespace, read as a dict)
is checked against them when present.

rosinality's model.py computes the same functions as the official StyleGAN2 networks, layer for
layer: PixelNorm = normalize_2nd_moment; EqualLinear(lr_mul) = FullyConnectedLayer(lr_multiplier)
(weight * lr_mul / sqrt(in), bias * lr_mul); FusedLeakyReLU = lrelu(x + b) * sqrt(2); the
modulation EqualLinear(bias_init=1) = affine; the up-sampling conv is conv_transpose2d(stride 2,
unflipped weight) then a [1,3,3,1] blur (x4) padded (1, 1), as official conv2d_resample(up=2);
ToRGB's skip Upsample pads (2, 1) as upsample2d; the discriminator's down-sampling convs blur
with pad (2, 2) (3x3) or (1, 1) (1x1) then stride 2, as conv2d_resample(down=2); ResBlock's
(out + skip) / sqrt(2) = the resnet gains sqrt(0.5); minibatch stddev groups min(batch, 4)
strided samples over 1 channel group; flattening is NCHW. Noise weight, constant input and
ToRGB bias differ only in shape. Two differences remain:

- demodulation adds its 1e-8 after rosinality's 1/sqrt(fan_in) weight scale, i.e. an epsilon of
  1e-8 * fan_in on the unscaled sum: a relative change near 1e-8 * fan_in / sum (W s)^2, below
  float32 rounding for any trained layer (the fixture test measures it);
- the checkpoint keeps no tracked w_avg (generate.py averages 4096 mapped latents when asked to
  truncate), so unless `latent_avg` is present it is estimated the same way.
"""

import re

import numpy as np

from jaxstyle.interop.stylegan2_ada import ConversionError, OfficialWeights
from jaxstyle.models.synthesis import channels_for
from jaxstyle.nn.upfirdn2d import setup_filter

NETWORKS = {"g_ema": "G_ema", "g": "G", "d": "D"}
LR_MLP = 0.01            # model.py's Generator(lr_mlp=0.01); train.py does not change it
MBSTD_GROUP = 4          # Discriminator.stddev_group
BLUR = setup_filter([1, 3, 3, 1])


def is_rosinality(obj):
    """Returns whether `obj` (as torch_pickle read it) is a rosinality checkpoint or G state_dict."""
    return isinstance(obj, dict) and ("g_ema" in obj or "style.1.weight" in _strip(obj))


def from_checkpoint(obj, path):
    """Returns the OfficialWeights of a rosinality checkpoint dict (or bare generator state_dict)."""
    if not is_rosinality(obj):
        raise ConversionError(f"{path}: not a rosinality stylegan2-pytorch checkpoint (no g_ema)")
    if "g_ema" not in obj:
        obj = {"g_ema": obj}
    args = obj.get("args") or {}
    if not isinstance(args, dict):
        raise ConversionError(f"{path}: 'args' is {type(args).__name__}, not train.py's argparse.Namespace")
    if args.get("arch", "stylegan2") != "stylegan2":
        raise ConversionError(f"{path}: args.arch={args['arch']!r}; only rosinality's 'stylegan2' "
                              "architecture is supported")
    states, names, g_kwargs, d_kwargs = {}, {}, None, None
    for key, official in NETWORKS.items():
        if obj.get(key) is None:
            continue
        state = _strip(obj[key])
        try:
            kwargs, states[official], renamed = (official_discriminator if key == "d" else official_generator)(state)
        except ConversionError as e:
            raise ConversionError(f"{path}: {key}: {e}") from None
        names[official] = {dst: f"{key}[{src!r}]" for dst, src in renamed.items()}
        if key == "d":
            d_kwargs = kwargs
        elif g_kwargs not in (None, kwargs):
            raise ConversionError(f"{path}: g and g_ema have different sizes")
        else:
            g_kwargs = kwargs
    if "G_ema" not in states:
        raise ConversionError(f"{path}: its g_ema is empty")
    _check_args(args, g_kwargs, path)
    if obj.get("latent_avg") is not None:
        for key in ("G_ema", "G"):
            if key in states:
                states[key]["mapping.w_avg"] = np.asarray(obj["latent_avg"], np.float32).reshape(-1)
    return OfficialWeights(g_kwargs, d_kwargs, states, f"{path} (rosinality stylegan2-pytorch checkpoint)", names)


def _strip(state):
    """Returns a state_dict without the `module.` prefix nn.DataParallel adds to every name."""
    if isinstance(state, dict) and state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _check_args(args, g_kwargs, path):
    """Raises ConversionError if train.py's args disagree with the sizes read off the tensors."""
    sizes = {"size": g_kwargs["img_resolution"], "latent": g_kwargs["z_dim"],
             "n_mlp": g_kwargs["mapping_kwargs"]["num_layers"]}
    for key, found in sizes.items():
        if key in args and args[key] != found:
            raise ConversionError(f"{path}: args.{key}={args[key]!r} but the weights have {key} {found}")
    if "channel_multiplier" in args:
        base = g_kwargs["synthesis_kwargs"]["channel_base"]
        if base != 16384 * args["channel_multiplier"] and g_kwargs["img_resolution"] > 32:
            raise ConversionError(f"{path}: args.channel_multiplier={args['channel_multiplier']!r} does "
                                  f"not match the weights' channels (channel_base {base})")


def _count(state, pattern):
    """Returns how many keys of `state` fully match `pattern` (one per layer)."""
    return sum(1 for k in state if re.fullmatch(pattern, k))


def _channel_plan(channels, what):
    """Returns (channel_base, channel_max) giving `channels` ({res: n}) as min(base / res, max)."""
    res = max(channels)
    base, cmax = channels[res] * res, channels[4]
    if any(channels_for(r, base, cmax) != n for r, n in channels.items()):
        raise ConversionError(f"{what} channels {dict(sorted(channels.items()))} do not follow "
                              "min(base / resolution, max)")
    return base, cmax


class _Renamer:
    """Collects official entries from rosinality ones, naming the rosinality key on any mismatch."""

    def __init__(self, state):
        self.state, self.out, self.used, self.names = state, {}, set(), {}

    def take(self, name, official, lead=(), shape=None):
        """Copies `name` to `official`, dropping leading unit axes `lead` and reshaping to `shape`."""
        if name not in self.state:
            raise ConversionError(f"missing key {name!r}")
        value = np.asarray(self.state[name])
        if value.shape[:len(lead)] != tuple(lead):
            raise ConversionError(f"key {name!r} has shape {value.shape}; expected leading axes {tuple(lead)}")
        value = value.reshape(value.shape[len(lead):])
        if shape is not None:
            if value.size != int(np.prod(shape)):
                raise ConversionError(f"key {name!r} has shape {self.state[name].shape}, expected {shape}")
            value = value.reshape(shape)
        self.out[official] = value
        self.names[official] = name
        self.used.add(name)

    def filter(self, name, gain):
        """Checks a blur kernel buffer: the [1, 3, 3, 1] filter times `gain`."""
        if name in self.state:
            value = np.asarray(self.state[name])
            if value.shape != BLUR.shape or not np.allclose(value, BLUR * gain):
                raise ConversionError(f"key {name!r} is not the [1, 3, 3, 1] blur kernel jaxstyle uses")
            self.used.add(name)

    def finish(self):
        """Returns (official state_dict, {official name: rosinality name}); raises ConversionError
        naming an unexpected key."""
        extra = sorted(set(self.state) - self.used)
        if extra:
            raise ConversionError(f"unexpected key {extra[0]!r}")
        return self.out, self.names


def _modconv(r, src, dst, with_noise=True):
    """Renames one StyledConv / ToRGB modulated conv: weight, modulation (affine), noise, bias."""
    w = np.shape(r.state.get(f"{src}.conv.weight", ()))
    r.take(f"{src}.conv.weight", f"{dst}.weight", lead=(1,))
    r.take(f"{src}.conv.modulation.weight", f"{dst}.affine.weight")
    r.take(f"{src}.conv.modulation.bias", f"{dst}.affine.bias")
    if with_noise:
        r.take(f"{src}.noise.weight", f"{dst}.noise_strength", shape=())
        r.take(f"{src}.activate.bias", f"{dst}.bias")
    else:
        r.take(f"{src}.bias", f"{dst}.bias", shape=(w[1],) if len(w) > 1 else None)


def official_generator(state):
    """Returns (official G kwargs, official state_dict, {official name: rosinality name}) of a
    rosinality Generator state_dict."""
    n_mlp = _count(state, r"style\.\d+\.weight")
    blocks = _count(state, r"to_rgbs\.\d+\.conv\.weight")
    if "style.1.weight" not in state or "input.input" not in state:
        raise ConversionError("missing key 'style.1.weight' or 'input.input': not a rosinality Generator")
    resolution = 4 * 2 ** blocks
    r = _Renamer(state)
    for i in range(n_mlp):
        r.take(f"style.{i + 1}.weight", f"mapping.fc{i}.weight")
        r.take(f"style.{i + 1}.bias", f"mapping.fc{i}.bias")
    r.take("input.input", "synthesis.b4.const", lead=(1,))
    _modconv(r, "conv1", "synthesis.b4.conv1")
    r.take("noises.noise_0", "synthesis.b4.conv1.noise_const", lead=(1, 1))
    _modconv(r, "to_rgb1", "synthesis.b4.torgb", with_noise=False)
    for j in range(blocks):
        block = f"synthesis.b{8 * 2 ** j}"
        for k, layer in ((2 * j, "conv0"), (2 * j + 1, "conv1")):
            _modconv(r, f"convs.{k}", f"{block}.{layer}")
            r.take(f"noises.noise_{k + 1}", f"{block}.{layer}.noise_const", lead=(1, 1))
        r.filter(f"convs.{2 * j}.conv.blur.kernel", gain=4)   # Blur(upsample_factor=2)
        _modconv(r, f"to_rgbs.{j}", f"{block}.torgb", with_noise=False)
        r.filter(f"to_rgbs.{j}.upsample.kernel", gain=4)      # Upsample
    out, names = r.finish()
    channels = {4: out["synthesis.b4.const"].shape[0]}
    channels.update({8 * 2 ** j: out[f"synthesis.b{8 * 2 ** j}.conv0.weight"].shape[0] for j in range(blocks)})
    base, cmax = _channel_plan(channels, "generator")
    latent = out["mapping.fc0.weight"].shape[1]
    kwargs = dict(z_dim=latent, w_dim=latent, c_dim=0, img_resolution=resolution,
                  img_channels=out["synthesis.b4.torgb.weight"].shape[0],
                  mapping_kwargs=dict(num_layers=n_mlp, lr_multiplier=LR_MLP),
                  synthesis_kwargs=dict(channel_base=base, channel_max=cmax, conv_clamp=None,
                                        architecture="skip"))
    return kwargs, out, names


def official_discriminator(state):
    """Returns (official D kwargs, official state_dict, {official name: rosinality name}) of a
    rosinality Discriminator state_dict."""
    blocks = _count(state, r"convs\.\d+\.conv1\.0\.weight")
    if "convs.0.0.weight" not in state or "final_linear.1.weight" not in state:
        raise ConversionError("missing key 'convs.0.0.weight' or 'final_linear.1.weight': "
                              "not a rosinality Discriminator")
    resolution = 4 * 2 ** blocks
    r = _Renamer(state)
    r.take("convs.0.0.weight", f"b{resolution}.fromrgb.weight")
    r.take("convs.0.1.bias", f"b{resolution}.fromrgb.bias")
    for k in range(1, blocks + 1):
        block = f"b{resolution // 2 ** (k - 1)}"
        r.take(f"convs.{k}.conv1.0.weight", f"{block}.conv0.weight")
        r.take(f"convs.{k}.conv1.1.bias", f"{block}.conv0.bias")
        r.filter(f"convs.{k}.conv2.0.kernel", gain=1)
        r.take(f"convs.{k}.conv2.1.weight", f"{block}.conv1.weight")
        r.take(f"convs.{k}.conv2.2.bias", f"{block}.conv1.bias")
        r.filter(f"convs.{k}.skip.0.kernel", gain=1)
        r.take(f"convs.{k}.skip.1.weight", f"{block}.skip.weight")
    for src, dst in (("final_conv.0.weight", "b4.conv.weight"), ("final_conv.1.bias", "b4.conv.bias"),
                     ("final_linear.0.weight", "b4.fc.weight"), ("final_linear.0.bias", "b4.fc.bias"),
                     ("final_linear.1.weight", "b4.out.weight"), ("final_linear.1.bias", "b4.out.bias")):
        r.take(src, dst)
    out, names = r.finish()
    channels = {4: out["b4.conv.weight"].shape[0]}
    channels.update({resolution // 2 ** (k - 1): out[f"b{resolution // 2 ** (k - 1)}.conv0.weight"].shape[0]
                     for k in range(1, blocks + 1)})
    base, cmax = _channel_plan(channels, "discriminator")
    kwargs = dict(c_dim=0, img_resolution=resolution, img_channels=out[f"b{resolution}.fromrgb.weight"].shape[1],
                  architecture="resnet", channel_base=base, channel_max=cmax, conv_clamp=None,
                  epilogue_kwargs=dict(mbstd_group_size=MBSTD_GROUP, mbstd_num_channels=1))
    return kwargs, out, names
