"""dezero.transforms: array steps (sample and batch agree), PIL steps on small images, errors."""
import numpy as np
import pytest

from dezero import transforms as T

Image = pytest.importorskip('PIL.Image')

rng = np.random.default_rng(0)


def rgb_image(w=6, h=4):
    array = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(array), array


# --- array steps ------------------------------------------------------------------------------
def test_flatten_sample_and_batch():
    x = rng.integers(0, 256, (5, 1, 3, 4), dtype=np.uint8)
    assert T.Flatten()(x[2]).shape == (12,)
    np.testing.assert_array_equal(T.Flatten()(x[2]), x[2].ravel())
    batch = T.Flatten().apply_batch(x)
    assert batch.shape == (5, 12)
    np.testing.assert_array_equal(batch, np.stack([x[i].ravel() for i in range(5)]))
    assert T.Flatten().apply_batch(x[:0]).shape == (0, 12)


def test_flatten_copies():
    x = np.zeros((2, 2), np.float32)
    T.Flatten()(x)[0] = 1
    assert x[0, 0] == 0


@pytest.mark.parametrize('transform,dtype', [
    (T.ToFloat(), np.float32), (T.ToFloat(np.float64), np.float64), (T.ToInt(), np.int64),
    (T.ToInt(np.int32), np.int32), (T.AsType(np.float16), np.float16)])
def test_astype_family(transform, dtype):
    x = np.array([[1.7, -2.2], [3.0, 255.0]])
    y = transform(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, x.astype(dtype))
    np.testing.assert_array_equal(transform.apply_batch(x), x.astype(dtype))


def test_normalize_scalar_keeps_float32():
    x = rng.integers(0, 256, (1, 4, 4)).astype(np.float32)
    y = T.Normalize(0., 255.)(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x / np.float32(255))
    y = T.Normalize(mean=np.float64(0.5), std=np.float64(2.0))(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, (x - 0.5) / 2.0, rtol=1e-6)


def test_normalize_integer_input_gives_float32():
    x = np.array([0, 51, 255], np.uint8)
    y = T.Normalize(0, 255)(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [0, 0.2, 1], rtol=1e-6)


def test_normalize_float64_stays_float64():
    assert T.Normalize(1, 2)(np.ones(3)).dtype == np.float64


def test_normalize_per_channel_sample_and_batch():
    x = rng.standard_normal((4, 3, 2, 5)).astype(np.float32)
    mean, std = [0.1, 0.2, 0.3], [1.0, 2.0, 4.0]
    t = T.Normalize(mean, std)
    expected = (x - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    np.testing.assert_array_equal(t(x[1]), expected[1])
    np.testing.assert_array_equal(t.apply_batch(x), expected)
    assert t(x[1]).dtype == np.float32


@pytest.mark.parametrize('shape', [(12,), (3, 4), (2, 4, 4)])
def test_normalize_per_channel_needs_matching_channels(shape):
    with pytest.raises(ValueError, match=r'Normalize: a per-channel mean of 3 values.*C = 3'):
        T.Normalize([0.1, 0.2, 0.3])(np.zeros(shape, np.float32))


def test_compose_sample_batch_and_batchable():
    x = rng.integers(0, 256, (7, 1, 28, 28), dtype=np.uint8)
    t = T.Compose([T.Flatten(), T.ToFloat(), T.Normalize(0., 255.)])
    assert t.batchable
    per_sample = np.stack([t(s) for s in x])
    batch = t.apply_batch(x)
    assert batch.dtype == per_sample.dtype == np.float32
    np.testing.assert_array_equal(batch, per_sample)  # bit-identical, not just close
    assert not T.Compose([T.Flatten(), lambda a: a]).batchable
    assert not T.Compose([T.RandomHorizontalFlip()]).batchable
    assert T.Compose([]).batchable and T.Compose([])(x) is x


def test_compose_applies_in_order():
    t = T.Compose([lambda a: a + 1, lambda a: a * 10])
    assert t(np.array(1)) == 20


def test_repr_names_parameters():
    assert repr(T.Compose([T.Normalize(0., 255.)])) == 'Compose([Normalize(mean=0.0, std=255.0)])'


# --- PIL steps --------------------------------------------------------------------------------
def test_to_array_rgb_and_gray():
    img, array = rgb_image()
    y = T.ToArray()(img)
    assert y.shape == (3, 4, 6) and y.dtype == np.float32
    np.testing.assert_array_equal(y, array.transpose(2, 0, 1))
    gray = T.ToArray(np.uint8)(img.convert('L'))
    assert gray.shape == (1, 4, 6) and gray.dtype == np.uint8
    np.testing.assert_array_equal(gray[0], np.asarray(img.convert('L')))


def test_to_array_casts_arrays():
    y = T.ToArray()(np.ones((3, 2, 2), np.uint8))
    assert y.dtype == np.float32


def test_to_pil_round_trip():
    img, array = rgb_image()
    back = T.ToPIL()(array.transpose(2, 0, 1))
    assert back.mode == 'RGB' and back.size == (6, 4)
    np.testing.assert_array_equal(np.asarray(back), array)
    gray = T.ToPIL()(array[None, :, :, 0])
    assert gray.mode == 'L'
    np.testing.assert_array_equal(np.asarray(gray), array[:, :, 0])


def test_to_pil_errors():
    with pytest.raises(ValueError, match=r'ToPIL: expected a \(C, H, W\) or \(H, W\) array, got shape \(5'):
        T.ToPIL()(np.zeros(5, np.uint8))
    with pytest.raises(TypeError, match='ToPIL: PIL cannot make an image.*AsType'):
        T.ToPIL()(np.zeros((3, 2, 2), np.float64))


def test_convert_modes():
    img, array = rgb_image()
    assert T.Convert('L')(img).mode == 'L'
    bgr = np.asarray(T.Convert('BGR')(img))
    np.testing.assert_array_equal(bgr, array[:, :, ::-1])
    rgba = img.convert('RGBA')
    np.testing.assert_array_equal(np.asarray(T.Convert()(rgba)), array)


def test_resize_matches_pil():
    img, _ = rgb_image(8, 6)
    y = T.Resize(3)(img)
    assert y.size == (3, 3)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(img.resize((3, 3), Image.BILINEAR)))
    y = T.Resize((5, 2), Image.NEAREST)(img)
    assert y.size == (5, 2)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(img.resize((5, 2), Image.NEAREST)))


def test_center_crop_pil_and_array():
    img, array = rgb_image(7, 5)
    crop = T.CenterCrop((3, 2))(img)  # (width, height)
    assert crop.size == (3, 2)
    np.testing.assert_array_equal(np.asarray(crop), array[1:3, 2:5])
    chw = array.transpose(2, 0, 1)
    np.testing.assert_array_equal(T.CenterCrop((3, 2))(chw), chw[:, 1:3, 2:5])
    with pytest.raises(ValueError, match=r'CenterCrop: crop .* \(8, 8\) is larger than the image \(7, 5\)'):
        T.CenterCrop(8)(img)


def test_random_horizontal_flip():
    img, array = rgb_image()
    np.testing.assert_array_equal(np.asarray(T.RandomHorizontalFlip(p=1.0)(img)), array[:, ::-1])
    assert T.RandomHorizontalFlip(p=0.0)(img) is img
    chw = array.transpose(2, 0, 1)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(chw), chw[:, :, ::-1])
    # Whole-array comparison: a single pixel could equal its mirror image by chance.
    assert not np.array_equal(chw, chw[:, :, ::-1])
    np.random.seed(0)
    flips = [np.array_equal(T.RandomHorizontalFlip(0.5)(chw), chw[:, :, ::-1]) for _ in range(200)]
    assert 60 < sum(flips) < 140


def test_pipeline_like_vgg_preprocess():
    img, _ = rgb_image(10, 8)
    t = T.Compose([T.Convert('RGB'), T.Resize(6), T.CenterCrop(4), T.ToArray(), T.Normalize(
        [1.0, 2.0, 3.0], [2.0, 2.0, 2.0])])
    y = t(img)
    assert y.shape == (3, 4, 4) and y.dtype == np.float32
    assert not t.batchable


def test_missing_pillow_names_the_extra(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == 'PIL' or name.startswith('PIL.'):
            raise ImportError('no PIL')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_pil)
    with pytest.raises(ImportError, match=r"dezero.transforms.ToPIL needs Pillow; install the 'image' extra"):
        T.ToPIL()(np.zeros((3, 2, 2), np.uint8))
