"""The coding form: integer probabilities, identical whatever the batch or evaluation order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from vlae_codec import api, bitsback, latents, lossy, tuning
from vlae_codec.accounting import coding_neg_elbo
from vlae_codec.ans import PRECISION, Stack, normalize
from vlae_codec.model import coding, form, pixel_features, quantize, zoo
from vlae_codec.model.quantize import ACT_MAX
from vlae_codec.model.fixed_point import LOGIT_MAX, Z_BITS
from vlae_codec.model.evaluate import evaluate
from vlae_codec.pixels import wavefronts

from conftest import fixture_photo


@pytest.fixture(scope="module")
def cm():
    return api.coding_model("bmnist")


@pytest.fixture(scope="module")
def x(bmnist_test):
    return torch.from_numpy(bmnist_test.astype(np.int64))[:, None]


def _window_matches_full(cm, x, positions):
    """Parameters from causal windows, pixel by pixel, equal those of the whole-image pass exactly."""
    z = latents.snap(cm, cm.posterior(x)[0], cm.lossless_bins)[1]
    feats = cm.features(z, *x.shape[2:])
    full = cm.pixel_params(x, feats)
    xp = torch.nn.functional.pad(cm.input(x), (cm.half, cm.half, cm.rows, 0))
    for r, c in positions:
        taps = torch.stack([xp[:, :, r + cm.rows + dy, c + cm.half + dx] for dy, dx in cm.window_offsets], 1)
        at = cm.pixel_params_at(taps.flatten(1), feats[:, :, r, c])
        assert torch.equal(at, full[:, :, r, c]), (r, c)
    return full


def test_window_path_equals_full_image_path(cm, x):
    _window_matches_full(cm, x, [(0, 0), (0, 27), (5, 3), (14, 14), (27, 0), (27, 27)])


def test_batch_size_does_not_change_anything(cm, x):
    mu, ls = cm.posterior(x)
    parts = [cm.posterior(x[i:i + 7]) for i in range(0, len(x), 7)]
    assert torch.equal(mu, torch.cat([p[0] for p in parts])) and torch.equal(ls, torch.cat([p[1] for p in parts]))
    z = latents.snap(cm, mu, cm.lossless_bins)[1]
    assert torch.equal(cm.features(z, 28, 28), torch.cat([cm.features(z[i:i + 1], 28, 28) for i in range(len(z))]))
    shift, log_scale = cm.prior_conditionals(z)
    assert torch.equal(shift[3:4], cm.prior_conditionals(z[3:4])[0])


def test_prior_conditional_ignores_later_dimensions(cm, x):
    z = latents.snap(cm, cm.posterior(x)[0], cm.lossless_bins)[1]
    for i in (0, 5, cm.cfg.latent_dim - 1):
        z2 = z.clone()
        z2[..., i:] = torch.randint(-5000, 5000, z2[..., i:].shape)
        assert torch.equal(cm.prior_conditionals(z)[0][..., i], cm.prior_conditionals(z2)[0][..., i])


@pytest.mark.parametrize("name", ["bmnist", "mnist", "cifar", "photo", "photo-grey"])
def test_one_prior_conditional_is_entry_i_of_all(name):
    """`prior_conditional` computes only what p(z_i | z_<i) depends on; the integers are
    `prior_conditionals`' entry i, for codes anywhere in their range (and beyond, clamped)."""
    model = api.coding_model(name)
    d = model.cfg.latent_dim
    z = torch.randint(-(20 << Z_BITS), 20 << Z_BITS, (300, d), generator=torch.Generator().manual_seed(0))
    shift, log_scale = model.prior_conditionals(z)
    for i in range(d):
        one_shift, one_log_scale = model.prior_conditional(z, i)
        assert torch.equal(one_shift, shift[:, i]) and torch.equal(one_log_scale, log_scale[:, i])


def test_frequency_tables_are_complete(cm, x):
    """Every table sums to 2^PRECISION and gives every symbol at least frequency 1."""
    freqs = cm.pixel_freqs(torch.arange(-LOGIT_MAX, LOGIT_MAX + 1)[:, None], 0, [])
    assert torch.all(freqs.sum(-1) == 1 << PRECISION) and freqs.min() >= 1
    mu, ls = (t[:, 0] for t in cm.posterior(x))
    shift, log_scale = cm.prior_conditionals(torch.zeros_like(mu))
    for i, k in enumerate(cm.lossless_bins):
        if k > 1:
            f = latents.posterior_freqs(cm, shift[:, i], log_scale[:, i], mu[:, i], ls[:, i], k)
            assert np.all(f.sum(-1) == 1 << PRECISION) and f.min() >= 1
    extreme = normalize(np.array([[0, 0, 1 << 30, 0]]))
    assert extreme.tolist() == [[1, 1, (1 << PRECISION) - 3, 1]]


def test_snap_finds_the_bin_holding_the_mean(cm, x):
    mu, _ = cm.posterior(x)
    bins, z = latents.snap(cm, mu, cm.lossy_bins)
    assert torch.equal(latents.from_bins(cm, bins, cm.lossy_bins), z)
    for i, k in enumerate(cm.lossy_bins):
        assert bins[..., i].max() < k


def test_coding_elbo_is_close_to_float_elbo(cm, bmnist_test):
    """Quantization costs little: the coding form's -ELBO is within 1% of the float model's."""
    images = bmnist_test
    float_bits = evaluate(zoo.load("bmnist"), images, is_samples=0)["neg_elbo_bits_per_dim"]
    info = coding_neg_elbo(cm, torch.from_numpy(images.astype(np.int64))[:, None])
    coding_bits = info.total.mean() / cm.cfg.dims
    assert abs(coding_bits - float_bits) / float_bits < 0.01


def test_tiny_model_converts_and_saves(tiny_model, tmp_path):
    x = torch.bernoulli(torch.full((16, 1, 28, 28), 0.2))
    cm = coding.convert(tiny_model, x)
    cm.save(tmp_path)
    loaded = coding.VLAECodingModel.load(tmp_path)
    assert torch.equal(cm.posterior(x.long())[0], loaded.posterior(x.long())[0])
    assert len(loaded.weights_hash) == 64
    for name, layer in cm.layers.items():
        for key, value in layer.tensors(name).items():
            assert torch.equal(value, loaded.layers[name].tensors(name)[key]), key


def test_coding_files_with_float64_weights_still_load(tiny_model, tmp_path):
    from safetensors.torch import load_file, save_file

    cm = coding.convert(tiny_model, torch.bernoulli(torch.full((16, 1, 28, 28), 0.2)))
    cm.save(tmp_path)
    path = tmp_path / form.FILES[0]
    tensors = load_file(str(path))
    assert tensors["head.window.weight"].dtype == torch.int16
    save_file({k: v.double() if k.endswith(".weight") else v for k, v in tensors.items()}, str(path))
    old = coding.VLAECodingModel.load(tmp_path)
    for name, layer in cm.layers.items():
        assert torch.equal(layer.weight, old.layers[name].weight), name


# Small untrained 8-bit models in coding form, for checks that need no training: greyscale
# with one global code, and RGB with a grid of codes on an image whose sides are not
# multiples of the block.
SMALL = {
    "grey": (dict(mixtures=3, latent_dim=8, encoder_channels=(8, 8, 8), encoder_hidden=16, made_hidden=(24,),
                  feature_channels=8, pixel_hidden=16), (1, 28, 28)),
    "rgb_grid": (dict(channels=3, block=8, height=32, width=32, mixtures=3, latent_dim=4,
                      encoder_channels=(8, 8, 8), encoder_hidden=16, made_hidden=(12,), feature_channels=8,
                      pixel_hidden=16), (3, 19, 13)),
}


@pytest.fixture(scope="module", params=sorted(SMALL))
def mixture_cm(request):
    from vlae_codec.model import VLAE, VLAEConfig

    torch.manual_seed(0)
    kw, shape = SMALL[request.param]
    cfg = VLAEConfig(likelihood="logistic_mixture", **kw)
    calib = torch.randint(0, 256, (32, cfg.channels, cfg.height, cfg.width)).float()
    return coding.convert(VLAE(cfg).eval(), calib), shape


def test_mixture_tables_are_complete_and_window_exact(mixture_cm):
    cm, (c, h, w) = mixture_cm
    x = torch.randint(0, 256, (3, c, h, w))
    full = _window_matches_full(cm, x, [(0, 0), (h // 2, w - 1), (h - 1, 5), (h - 1, w - 1)])
    params = full.permute(0, 2, 3, 1).reshape(-1, full.shape[1])
    symbols = cm.pixel_symbols(x.permute(0, 2, 3, 1).reshape(-1, c))
    assert torch.equal(cm.pixel_value(symbols), x.permute(0, 2, 3, 1).reshape(-1, c))
    for stage in range(cm.pixel_stages):
        freqs = cm.pixel_freqs(params, stage, symbols[:stage])
        assert freqs.shape[1] == 16 and torch.all(freqs.sum(1) == 1 << PRECISION) and freqs.min() >= 1


def test_mixture_round_trip(mixture_cm):
    from vlae_codec import ans, bitsback

    cm, (c, h, w) = mixture_cm
    x = torch.randint(0, 256, (5, c, h, w))
    x[1] = 0
    x[2] = 255
    stack = ans.Stack()
    info = bitsback.encode_lossless(stack, cm, x, 4, 2)
    assert 32 * len(stack.words()) >= info.total.sum()
    back = bitsback.decode_lossless(ans.Stack(stack.words()), cm, 5, h, w, 4, 3)
    assert torch.equal(back, x)


def test_a_channels_second_stage_reuses_its_mixture(mixture_cm, monkeypatch):
    """Each channel's mixture is worked out once per step, for both of its stages, as the
    decoder asks for them (fresh symbol tensors each time)."""
    cm, (c, h, w) = mixture_cm
    x = torch.randint(0, 256, (2, c, h, w))
    full = cm.pixel_params(x, cm.features(latents.snap(cm, cm.posterior(x)[0], cm.lossless_bins)[1], h, w))
    params = full.permute(0, 2, 3, 1).reshape(-1, full.shape[1])
    made = []
    channel = form.CodingForm._channel
    monkeypatch.setattr(form.CodingForm, "_channel", lambda self, *a: made.append(a[1]) or channel(self, *a))
    symbols: list[torch.Tensor] = []
    for stage in range(cm.pixel_stages):
        freqs = cm.pixel_freqs(params, stage, symbols)
        symbols.append(torch.from_numpy(freqs.numpy().argmax(axis=1)))
    assert made == list(range(c))


def test_mixture_lossy_generation_is_deterministic(mixture_cm):
    from vlae_codec import ans, bitsback

    cm, (c, h, w) = mixture_cm
    x = torch.randint(0, 256, (3, c, h, w))
    stack = ans.Stack()
    lossy.encode_lossy(stack, cm, x, 2)
    words = stack.words()
    for seed in (None, 5):
        a = lossy.decode_lossy(ans.Stack(words), cm, 3, h, w, 2, seed)
        b = lossy.decode_lossy(ans.Stack(words), cm, 3, h, w, 3, seed)
        assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 255 and a.shape == x.shape


@pytest.fixture(scope="module")
def photo_cm():
    return api.coding_model("photo")


@pytest.mark.parametrize("name", ["mnist", "cifar"])
def test_small_convolutions_as_products_equal_the_convolutions(name):
    """Convolutions on small maps, run as matrix products a few images at a time, give the
    integers torch's convolutions give, for every shipped layer, batch and map size."""
    cm, products = api.coding_model(name), 0
    for layer in cm.layers.values():
        if layer.kind not in ("conv", "conv_transpose") or layer.weight.shape[2:] == (1, 1):
            continue
        channels = layer.weight.shape[0 if layer.kind == "conv_transpose" else 1]
        for side in (4, 7, 8, 14, 16):
            x = torch.randint(-ACT_MAX, ACT_MAX, (quantize.GEMM_IMAGES + 3, channels, side, side + 1)).double()
            conv = F.conv2d if layer.kind == "conv" else F.conv_transpose2d
            try:
                expected = conv(x, layer.weight, layer.bias, stride=layer.stride, padding=layer.padding)
            except RuntimeError:  # a window larger than the map
                continue
            products += layer._small_map(x)
            assert torch.equal(layer.accumulate(x), expected)
    assert products >= 4


def test_settings_and_bytes_the_same_with_the_posterior_beside_the_fit(photo_cm):
    """The clean start's posterior made beside the offsets' fit changes neither the offsets, nor
    the shift, nor the file's words, and comes back as the codec would make it."""
    x = torch.from_numpy(fixture_photo("kodim03-100-200-96x96").astype(np.int64)).permute(2, 0, 1)[None]
    fitted, shift, nothing = tuning.settings(photo_cm, x, True)
    beside = tuning.settings(photo_cm, x, True, beside=lambda: bitsback.posterior_of(photo_cm, x, 1)[0])
    assert nothing is None and shift == beside[1] and fitted is not None and torch.equal(fitted, beside[0])
    mu = photo_cm.posterior(x)[0]
    assert torch.equal(beside[2], mu)
    cm = photo_cm.with_offsets(fitted)
    words = []
    for clean_mu in (None, mu):
        stack = Stack()
        bitsback.encode_lossless(stack, cm, x, 4, 2, clean_shift=shift, clean_mu=clean_mu)
        words.append(stack.words())
    assert np.array_equal(*words)


def test_tiled_posterior_equals_whole_image(photo_cm, monkeypatch):
    """The grid encoder a tile at a time (with its halo) gives the whole image's integers."""
    x = torch.from_numpy(fixture_photo("kodim03-100-200-96x96")[:93, :85].astype(np.int64)).permute(2, 0, 1)[None]
    whole = photo_cm.posterior(x)
    monkeypatch.setattr(coding, "POSTERIOR_TILE", 3)
    tiled = photo_cm.posterior(x)
    assert torch.equal(whole[0], tiled[0]) and torch.equal(whole[1], tiled[1])


def test_block_features_by_position_equal_whole_map(photo_cm, monkeypatch):
    """Features made a block at a time, asked for along wavefronts either way or at random,
    equal the whole map (made a row of blocks at a time, or by the 1x1 layer at once), and
    the cache stays a few blocks per row of blocks."""
    height, width = 45, 70
    rows, cols = photo_cm.code_grid(height, width)
    z = torch.randint(-3 << 12, 3 << 12, (2, rows * cols, photo_cm.cfg.latent_dim))
    small = photo_cm.pixel_features(z, height, width)
    assert isinstance(small, pixel_features.WholeFeatures)  # under WHOLE_MAP_BYTES
    monkeypatch.setattr(coding, "WHOLE_MAP_BYTES", 0)
    whole = photo_cm.features(z, height, width)
    assert torch.equal(small.whole(), whole)
    a = z.double().transpose(1, 2).reshape(2, -1, rows, cols)
    for name in ("feat.mix", "feat.hidden", "feat.to_pixels"):
        a = photo_cm.layers[name](a)
    assert torch.equal(F.pixel_shuffle(a, photo_cm.cfg.block)[:, :, :height, :width].short(), whole)
    by_position = whole.permute(2, 3, 0, 1).reshape(height, width, -1)
    steps = wavefronts(height, width, photo_cm.half)
    features = photo_cm.pixel_features(z, height, width)
    assert isinstance(features, pixel_features.BlockFeatures)
    for r, c in list(steps) + list(reversed(steps)):
        assert torch.equal(features.at(r, c), by_position[r, c].reshape(-1, whole.shape[1]))
    assert features.slots <= 16
    r, c = np.random.default_rng(0).integers(0, [[height], [width]], size=(2, 300))
    assert torch.equal(features.at(r, c), by_position[r, c].reshape(-1, whole.shape[1]))
