"""XLA fuses each layer's epilogue: after the convolution, demodulation, noise, bias, activation
and gain (and clamp) run as one elementwise loop, read from the optimised HLO of the compiled
layer. A layer written so that XLA must materialise an intermediate (a host callback or a
custom call between the ops, checked by hand with a pure_callback activation) fails here."""

import re

import jax
import jax.numpy as jnp
import pytest

from jaxstyle.models.synthesis import SynthesisLayer
from jaxstyle.nn.equalized import EqualConv

INSTRUCTION = re.compile(r"^\s*(ROOT )?%(\S+) = \S+ (\w[\w-]*)\((.*?)\)(.*)$")


def entry_instructions(compiled_text):
    """Returns [(is_root, name, opcode, operand names, rest)] of the entry computation."""
    entry = compiled_text[compiled_text.index("\nENTRY"):]
    entry = entry[:entry.index("\n}")]
    out = []
    for line in entry.splitlines()[1:]:
        m = INSTRUCTION.match(line)
        if m:
            out.append((bool(m[1]), m[2], m[3], re.findall(r"%([\w.\-]+)", m[4]), m[5]))
    return out


def epilogue_of(fn, *args):
    """Returns the instructions that read the (only) convolution's output."""
    instructions = entry_instructions(jax.jit(fn).lower(*args).compile().as_text())
    convs = [name for _, name, op, _, _ in instructions if op == "convolution"]
    assert len(convs) == 1, convs
    return [i for i in instructions if convs[0] in i[3]]


@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_synthesis_layer_epilogue_is_one_fused_loop(noise_mode):
    layer = SynthesisLayer(8, conv_clamp=256.0)
    x, w = jnp.ones((2, 8, 8, 8)), jnp.ones((2, 16))
    variables = layer.init({"params": jax.random.key(0)}, x, w, "const")
    readers = epilogue_of(lambda v, x, w, k: layer.apply(v, x, w, noise_mode, rngs={"noise": k}),
                          variables, x, w, jax.random.key(1))
    assert len(readers) == 1
    is_root, _, opcode, _, rest = readers[0]
    assert is_root and opcode == "fusion" and "kind=kLoop" in rest


def test_equalized_conv_bias_activation_gain_and_clamp_fuse():
    layer = EqualConv(8, 3, activation="lrelu", conv_clamp=256.0)
    x = jnp.ones((2, 8, 8, 4))
    variables = layer.init(jax.random.key(0), x)
    readers = epilogue_of(lambda v, x: layer.apply(v, x, gain=0.5), variables, x)
    assert len(readers) == 1
    is_root, _, opcode, _, rest = readers[0]
    assert is_root and opcode == "fusion" and "kind=kLoop" in rest
