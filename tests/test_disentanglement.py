"""Content/style disentanglement measure: the law-of-total-variance split, on closed forms."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.data.toyfaces import CONTENT_FACTORS, FACTOR_NAMES, STYLE_FACTORS
from jaxstyle.metrics.disentanglement import content_style_shares, within_share


def test_within_share_of_an_additive_balanced_design():
    a = np.array([-3.0, -1.0, 1.0, 3.0])           # between-group effects, population var 5
    b = np.array([-2.0, 0.0, 2.0])                  # within-group effects, population var 8/3
    values = (a[:, None] + b[None, :])[..., None]   # (S=4, K=3, F=1)
    np.testing.assert_allclose(within_share(values), [(8 / 3) / (5 + 8 / 3)], rtol=1e-12)
    only_between = np.repeat(a[:, None, None], 3, axis=1)
    np.testing.assert_allclose(within_share(only_between), [0.0])


class FakeOracle:
    """'Predicts' the factors written into the first pixel row of the image."""

    def predict(self, images):
        return images[:, 0, : len(FACTOR_NAMES), 0]


def test_content_only_from_the_content_draw_and_no_leakage():
    content = np.array([n in CONTENT_FACTORS for n in FACTOR_NAMES])

    def render(z, keys):
        # Content factors from the content key alone; style factors from z alone.
        u = jax.vmap(lambda k: jax.random.uniform(k, (len(FACTOR_NAMES),)))(keys)
        f = jnp.where(content, u, jax.nn.sigmoid(z[:, : len(FACTOR_NAMES)]))
        return jnp.zeros((z.shape[0], 4, 16, 1)).at[:, 0, : len(FACTOR_NAMES), 0].set(f)

    report = content_style_shares(render, 16, FakeOracle(), num_styles=64, num_contents=16, batch=100)
    assert report["style_leakage"] == 0.0
    assert all(report["per_factor"][n] == 0.0 for n in STYLE_FACTORS)
    # Content draws vary freely within every style: only sampling noise puts variance between styles.
    assert 0.9 < report["content_share"] <= 1.0
