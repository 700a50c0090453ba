"""DCN v2 in pure torch against the plain convolution, a naive per-pixel bilinear loop, and gradcheck."""

import math

import torch
import torch.nn.functional as F

from evdet.models.modules.deform_conv import DeformConv2d, deform_columns, deform_conv2d


def bilinear(img, y, x):
    """Naive bilinear read of img (H, W) at real (y, x); pixels outside the map are 0."""
    h, w = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    total = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                total += wy * wx * float(img[yy, xx])
    return total


def deform_conv_by_loop(x, offset, mask, weight, bias, stride, padding):
    b, cin, _, _ = x.shape
    cout, _, kh, kw = weight.shape
    ho, wo = offset.shape[-2:]
    out = torch.zeros(b, cout, ho, wo, dtype=torch.float64)
    for n in range(b):
        for i in range(ho):
            for j in range(wo):
                for o in range(cout):
                    acc = float(bias[o])
                    for ky in range(kh):
                        for kx in range(kw):
                            k = ky * kw + kx
                            y = i * stride - padding + ky + float(offset[n, 2 * k, i, j])
                            xx = j * stride - padding + kx + float(offset[n, 2 * k + 1, i, j])
                            m = float(mask[n, k, i, j])
                            for c in range(cin):
                                acc += float(weight[o, c, ky, kx]) * m * bilinear(x[n, c], y, xx)
                    out[n, o, i, j] = acc
    return out


def test_zero_offsets_unit_masks_give_the_plain_convolution():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    for stride in (1, 2):
        ho, wo = (7 + 2 - 3) // stride + 1, (9 + 2 - 3) // stride + 1
        offset = torch.zeros(2, 18, ho, wo, dtype=torch.float64)
        mask = torch.ones(2, 9, ho, wo, dtype=torch.float64)
        # the sampled columns are exactly im2col's (bilinear weights 1 and 0 at integer positions)
        cols = deform_columns(x, offset, mask, (3, 3), (stride, stride), (1, 1), (1, 1))
        unfolded = F.unfold(x, 3, padding=1, stride=stride).reshape(2, 3, 9, ho, wo)
        assert torch.equal(cols, unfolded)
        got = deform_conv2d(x, offset, mask, weight, bias, stride=stride, padding=1)
        want = F.conv2d(x, weight, bias, stride=stride, padding=1)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)  # only the summation order differs


def test_layer_at_initialisation_is_the_plain_convolution():
    torch.manual_seed(1)
    layer = DeformConv2d(5, 6, 3, stride=2)
    conv = torch.nn.Conv2d(5, 6, 3, stride=2, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(layer.weight)
    x = torch.randn(2, 5, 11, 8)
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-5, atol=1e-5)


def test_random_offsets_agree_with_naive_bilinear_loop():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(3, generator=g, dtype=torch.float64)
    for stride in (1, 2):
        ho, wo = (5 - 1) // stride + 1, (6 - 1) // stride + 1
        offset = 2.5 * torch.randn(2, 18, ho, wo, generator=g, dtype=torch.float64)  # many taps fall outside
        mask = torch.rand(2, 9, ho, wo, generator=g, dtype=torch.float64)
        got = deform_conv2d(x, offset, mask, weight, bias, stride=stride, padding=1)
        want = deform_conv_by_loop(x, offset, mask, weight, bias, stride, 1)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    # offsets away from integers: bilinear interpolation is not differentiable at grid points
    offset = (torch.randn(1, 18, 4, 5, generator=g, dtype=torch.float64) + 0.37).requires_grad_()
    mask = torch.rand(1, 9, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: deform_conv2d(*a, padding=1), (x, offset, mask, weight, bias))
