"""Convolution on ``(N, C, H, W)`` images: im2col/col2im, conv2d, deconv2d, and the book's
``conv2d_simple`` built from im2col and linear. Pooling lives in ``dezero.ops.pooling`` and shares
the window views and argument checks defined here.

Every kernel is vectorised: a window *view* of the padded input (``as_strided``, no copy) gives all
patches at once, and accumulation (col2im) loops only over the KH*KW kernel offsets, each step
adding one strided slice. On the CPU the convolutions run a few images at a time (see
``_batch_chunks``): each chunk's patches are copied into a ``(C*KH*KW, B*OH*OW)`` matrix
whose columns run image by image, so the chunk is one wide GEMM (OpenBLAS runs these faster than
a batch of per-image products), and the small ``(OC, B, OH*OW)`` result is transposed into the
output while it is still in cache. A stride-1 conv2d instead copies each image's patches as whole
runs of its flattened planes (``_flat_windows``) and runs one GEMM per image. Patches are
recomputed for the weight gradient rather than kept.
Scratch buffers are reused between calls (``_chunk_buffer``), and elementwise passes are arranged
on contiguous runs: NumPy's ufuncs are several times slower on strided blocks than on long runs.

Backward passes are written with these same Functions, so gradients of any order work: conv2d's
input gradient is deconv2d and vice versa, and the weight gradient is ``Conv2DGradW`` (whose own
gradient uses conv2d/deconv2d).
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from dezero import _memory, _parallel
from dezero._checks import int_pair
from dezero._parallel import split_apply
from dezero.core import Constant, Function, Variable, broadcast_to
from dezero.cuda import get_array_module
from dezero.ops.linalg import linear
from dezero.ops.reduction import sum as _sum
from dezero.ops.shape import reshape, transpose
from dezero.utils import get_conv_outsize, get_deconv_outsize, reshape_sum_backward

__all__ = ['Im2col', 'Col2im', 'Conv2d', 'Deconv2d', 'Conv2DGradW', 'im2col', 'col2im', 'conv2d',
           'deconv2d', 'conv2d_simple', 'im2col_array', 'col2im_array']

IntPair = int | tuple[int, int]

# Working-set size of one batch chunk of the CPU convolution kernels (see _batch_chunks). 5.5 MiB
# gives 8 images of a 32→64-channel 3x3 conv on 26x26 inputs, where OpenBLAS's GEMM measured fastest.
_CHUNK_BYTES = 11 * 2 ** 19
# Below this patch length (C*KH*KW) a chunk's GEMMs run image by image, straight into the output, each
# patch matrix with a row of ones for the bias (see _patch_matrix): a wide GEMM with so short an
# inner length is bound by its output's traffic. Measured 2.5x faster for a 1-channel 3x3 conv, 1.2x
# for 8 channels, 10-20% slower for 32.
_PER_IMAGE_MAX_K = 160
# conv2d with stride 1 and at least _PER_IMAGE_MAX_K patch rows takes its patches as whole runs of
# the flattened image on the CPU (_conv_flat): measured 7-8% faster for a 32→64-channel 3x3 conv on
# 26x26 inputs. Its weight gradient gained nothing that way (same GEMM time), so it keeps the chunks.
# Winograd's F(2x2, 3x3) and F(2, 3) (along W) were tried for this conv: their GEMMs took 0.6-0.7x the
# time, but the input and output transforms, done as NumPy passes, made the whole 1.2-1.6x slower.
# A switch so that tests also run the general kernels on stride 1.
_FLAT_STRIDE1 = True


# =============================================================================
# Argument checks
# =============================================================================
def _check_image(op: str, x: Any, name: str = 'x') -> None:
    if x.ndim != 4:
        raise ValueError(f'{op}: expected {name} of shape (N, C, H, W), got shape {x.shape}')


def _out_hw(op: str, shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
            pad: tuple[int, int]) -> tuple[int, int]:
    """Output height and width of a sliding window; raises when the kernel does not fit."""
    (h, w), (kh, kw) = shape[2:], kernel
    ph, pw = pad
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ValueError(f'{op}: kernel {kh}x{kw} is larger than the padded input '
                         f'{h + 2 * ph}x{w + 2 * pw} (input shape {shape}, pad {pad})')
    return get_conv_outsize(h, kh, stride[0], ph), get_conv_outsize(w, kw, stride[1], pw)


def _fill_value(dtype: Any, for_min: bool = False) -> Any:
    """The value that never wins a max (-inf for floats, the integer minimum), or with ``for_min``
    a min (+inf, the integer maximum)."""
    dtype = np.dtype(dtype)
    if dtype.kind == 'f':
        return np.inf if for_min else -np.inf
    return np.iinfo(dtype).max if for_min else np.iinfo(dtype).min


# =============================================================================
# Array kernels (NumPy or CuPy arrays in, arrays out; no graph)
# =============================================================================
def _pad(x: Any, pad: tuple[int, int], value: Any = 0) -> Any:
    """``x (N, C, H, W)`` framed by ``pad`` rows/columns of ``value`` on each side."""
    ph, pw = pad
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    # Write the frame and the interior once each, rather than fill everything then overwrite.
    out = _memory.empty(xp, (n, c, h + 2 * ph, w + 2 * pw), x.dtype)
    out[:, :, :ph] = value
    out[:, :, ph + h:] = value
    out[:, :, ph:ph + h, :pw] = value
    out[:, :, ph:ph + h, pw + w:] = value
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _windows(x_padded: Any, kernel: tuple[int, int], stride: tuple[int, int],
             out_hw: tuple[int, int]) -> Any:
    """View ``(N, C, KH, KW, OH, OW)`` of a padded image, never written through: element
    ``[n, c, i, j, oy, ox]`` is ``x_padded[n, c, oy*SH + i, ox*SW + j]``. No data is copied."""
    xp = get_array_module(x_padded)
    n, c = x_padded.shape[:2]
    s_n, s_c, s_h, s_w = x_padded.strides
    return xp.lib.stride_tricks.as_strided(
        x_padded, shape=(n, c, kernel[0], kernel[1], out_hw[0], out_hw[1]),
        strides=(s_n, s_c, s_h, s_w, s_h * stride[0], s_w * stride[1]))


def _flat_windows(x_padded: Any, kernel: tuple[int, int], out_hw: tuple[int, int]) -> tuple[Any, int, int]:
    """Stride 1: a view ``(N, C, KH, KW, L)`` of the C-contiguous padded image, never written
    through, whose ``[n, c, i, j]`` is the run of ``L = (OH-1)*WP + OW`` pixels of channel ``c``'s
    flattened plane starting at row ``i``, column ``j``; returns it with ``L`` and ``WP``.

    Output pixel ``(y, x)`` is column ``q = y*WP + x`` of these runs ("wide" rows of the padded
    width ``WP``, whose last ``WP - OW`` columns belong to no output). Every patch row is then one
    contiguous run, which NumPy copies several times faster than the ``OW``-long pieces of
    ``_windows``, at the price of ``WP/OW`` more GEMM columns.
    """
    n, c, hp, wp = x_padded.shape
    (kh, kw), (oh, ow) = kernel, out_hw
    length = (oh - 1) * wp + ow
    s_n, s_c, s_h, s_w = x_padded.strides
    view = np.lib.stride_tricks.as_strided(x_padded, shape=(n, c, kh, kw, length),
                                           strides=(s_n, s_c, s_h, s_w, s_w))
    return view, length, wp


def _run_image_groups(body: Any, n: int, per_piece: int = 4) -> list[Any]:
    """``body(images)`` over ``range(n)``: one call on one thread, else for pieces of ``per_piece``
    images which the threads take as they finish (``run_pieces``); results in piece order."""
    parts = _parallel.available_threads()
    if parts < 2:
        return [body(range(n))]
    pieces = [range(start, min(start + per_piece, n)) for start in range(0, n, per_piece)]
    return _parallel.run_pieces(lambda index: body(pieces[index]), len(pieces), parts)


def _offset_slices(i: int, j: int, stride: tuple[int, int], out_hw: tuple[int, int]) -> tuple:
    """Index of the padded-image pixels that kernel offset ``(i, j)`` touches, one per output pixel."""
    sh, sw = stride
    oh, ow = out_hw
    return (slice(None), slice(None), slice(i, i + sh * (oh - 1) + 1, sh),
            slice(j, j + sw * (ow - 1) + 1, sw))


def _im2col_array(x: Any, kernel: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int],
                  to_matrix: bool, pad_value: Any = 0) -> Any:
    """Patches of ``x (N, C, H, W)``: ``(N, C, KH, KW, OH, OW)``, or ``(N*OH*OW, C*KH*KW)`` with
    ``to_matrix`` (rows are output pixels, columns follow W's ``(C, KH, KW)`` order)."""
    xp = get_array_module(x)
    out_hw = _out_hw('im2col', x.shape, kernel, stride, pad)
    view = _windows(_pad(x, pad, pad_value), kernel, stride, out_hw)
    if not to_matrix:
        return xp.ascontiguousarray(view)
    n, c = x.shape[:2]
    return xp.ascontiguousarray(view.transpose(0, 4, 5, 1, 2, 3)).reshape(
        n * out_hw[0] * out_hw[1], c * kernel[0] * kernel[1])


def _fold_into(image: Any, col: Any, stride: tuple[int, int]) -> None:
    """Add patches ``col (N, C, KH, KW, OH, OW)`` into the padded ``image (N, C, HP, WP)`` in place."""
    kh, kw, oh, ow = col.shape[2:]
    for i in range(kh):
        for j in range(kw):
            image[_offset_slices(i, j, stride, (oh, ow))] += col[:, :, i, j]


def _col2im_array(col: Any, image_shape: tuple[int, ...], kernel: tuple[int, int],
                  stride: tuple[int, int], pad: tuple[int, int]) -> Any:
    """Adjoint of im2col: sum patches ``col (N, C, KH, KW, OH, OW)`` back into an image of
    ``image_shape (N, C, H, W)``; pixels covered by several windows receive the sum."""
    xp = get_array_module(col)
    n, c, h, w = image_shape
    ph, pw = pad
    image = _memory.zeros(xp, (n, c, h + 2 * ph, w + 2 * pw), col.dtype)
    _fold_into(image, col, stride)
    if ph == 0 and pw == 0:
        return image
    return image[:, :, ph:ph + h, pw:pw + w]


def _batch_chunks(xp: Any, n: int, bytes_per_image: int) -> tuple[list[slice], int]:
    """Split a batch of ``n`` images into slices whose working set is about ``_CHUNK_BYTES``, at
    least one per thread; returns the slices and how many threads share them (``_run_chunks``).

    On the CPU, convolving a few images at a time keeps each chunk's patch matrix in cache between
    the copy or GEMM that writes it and the GEMM or fold that reads it, instead of streaming a
    matrix KH*KW times the size of the images through memory, and the buffers are reused. A GPU has
    the bandwidth and prefers few large kernels, so it gets the whole batch at once.
    """
    if xp is not np or n == 0:
        return [slice(0, n)], 1
    parts = min(_parallel.available_threads(), n)
    step = max(1, min(-(-n // parts), _CHUNK_BYTES // max(bytes_per_image, 1)))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)], parts


def _run_chunks(convolve: Any, chunks: list[slice], parts: int) -> list[Any]:
    """``convolve(group)`` over the chunks: on one thread one call for all of them, else one call per
    chunk, ``parts`` threads taking the next chunk as they finish (``run_pieces``: a core slowed by
    other work takes fewer). Each thread copies, multiplies and folds its own images into its own
    scratch buffers, so no kernel waits for another thread. Returns the results in chunk order, so
    that a sum over them is made in the same order whatever the threads."""
    if parts < 2:
        return [convolve(chunks)]
    return _parallel.run_pieces(lambda index: convolve(chunks[index:index + 1]), len(chunks), parts)


def _col_from_matrix(col: Any, image_shape: tuple[int, ...], kernel: tuple[int, int],
                     out_hw: tuple[int, int]) -> Any:
    """``(N*OH*OW, C*KH*KW)`` → a ``(N, C, KH, KW, OH, OW)`` view of the same data."""
    n, c = image_shape[:2]
    return col.reshape(n, out_hw[0], out_hw[1], c, kernel[0], kernel[1]).transpose(0, 3, 4, 5, 1, 2)


# =============================================================================
# im2col / col2im
# =============================================================================
class Im2col(Function):
    """Patches of ``x (N, C, H, W)`` as ``(N, C, KH, KW, OH, OW)`` or, with ``to_matrix``,
    ``(N*OH*OW, C*KH*KW)``; padding is ``pad_value`` (0, or -inf for pooling_simple)."""

    def __init__(self, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0,
                 to_matrix: bool = True, pad_value: Any = 0) -> None:
        self.kernel_size = int_pair('im2col', 'kernel_size', kernel_size, 1)
        self.stride = int_pair('im2col', 'stride', stride, 1)
        self.pad = int_pair('im2col', 'pad', pad, 0)
        self.to_matrix = to_matrix
        self.pad_value = pad_value

    def forward(self, x: Any) -> Any:
        _check_image('im2col', x)
        self.input_shape = x.shape
        return _im2col_array(x, self.kernel_size, self.stride, self.pad, self.to_matrix, self.pad_value)

    def backward(self, gy: Variable) -> Variable:
        return col2im(gy, self.input_shape, self.kernel_size, self.stride, self.pad, self.to_matrix)


def im2col(x: Any, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0,
           to_matrix: bool = True) -> Variable:
    """Extract the sliding-window patches of ``x (N, C, H, W)`` (zero padding).

    Returns ``(N, C, KH, KW, OH, OW)``, or with ``to_matrix`` the matrix ``(N*OH*OW, C*KH*KW)``
    whose row ``(n, y, x)`` is the patch under output pixel ``(y, x)`` of image ``n``, flattened in
    ``(C, KH, KW)`` order. ``OH = (H + 2*PH - KH) // SH + 1`` (likewise OW). Its gradient is col2im.
    """
    return Im2col(kernel_size, stride, pad, to_matrix)(x)


class Col2im(Function):
    """Fold patches (``(N, C, KH, KW, OH, OW)`` or the ``(N*OH*OW, C*KH*KW)`` matrix) into an
    image of ``input_shape (N, C, H, W)``, summing overlaps: the adjoint of Im2col."""

    def __init__(self, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair = 1,
                 pad: IntPair = 0, to_matrix: bool = True) -> None:
        if len(input_shape) != 4:
            raise ValueError(f'col2im: input_shape must be (N, C, H, W), got {tuple(input_shape)}')
        self.input_shape = tuple(int(v) for v in input_shape)
        self.kernel_size = int_pair('col2im', 'kernel_size', kernel_size, 1)
        self.stride = int_pair('col2im', 'stride', stride, 1)
        self.pad = int_pair('col2im', 'pad', pad, 0)
        self.to_matrix = to_matrix

    def forward(self, col: Any) -> Any:
        n, c = self.input_shape[:2]
        (kh, kw) = self.kernel_size
        oh, ow = _out_hw('col2im', self.input_shape, self.kernel_size, self.stride, self.pad)
        expected = (n * oh * ow, c * kh * kw) if self.to_matrix else (n, c, kh, kw, oh, ow)
        if col.shape != expected:
            raise ValueError(f'col2im: col of shape {col.shape} does not fit input_shape '
                             f'{self.input_shape} with kernel {self.kernel_size}, stride {self.stride}, '
                             f'pad {self.pad} (expected {expected})')
        if self.to_matrix:
            col = _col_from_matrix(col, self.input_shape, self.kernel_size, (oh, ow))
        return _col2im_array(col, self.input_shape, self.kernel_size, self.stride, self.pad)

    def backward(self, gx: Variable) -> Variable:
        return im2col(gx, self.kernel_size, self.stride, self.pad, self.to_matrix)


def col2im(x: Any, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair = 1,
           pad: IntPair = 0, to_matrix: bool = True) -> Variable:
    """Fold patches back into an image of ``input_shape (N, C, H, W)``: the adjoint of im2col.

    ``x`` is ``(N, C, KH, KW, OH, OW)``, or ``(N*OH*OW, C*KH*KW)`` with ``to_matrix``. Each patch
    value is added to the pixel it came from, so ``col2im(im2col(x))`` is ``x`` times the number
    of windows covering each pixel. Its gradient is im2col.
    """
    return Col2im(input_shape, kernel_size, stride, pad, to_matrix)(x)


def im2col_array(img: Any, kernel_size: IntPair, stride: IntPair, pad: IntPair,
                 to_matrix: bool = True) -> Any:
    """``im2col`` on a raw array (NumPy or CuPy), recording no graph: the book's array version.

    ``img (N, C, H, W)`` → ``(N, C, KH, KW, OH, OW)``, or with ``to_matrix`` ``(N*OH*OW, C*KH*KW)``.
    """
    return Im2col(kernel_size, stride, pad, to_matrix).forward(img)


def col2im_array(col: Any, img_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair,
                 pad: IntPair, to_matrix: bool = True) -> Any:
    """``col2im`` on a raw array (NumPy or CuPy), recording no graph: the book's array version.

    ``col (N, C, KH, KW, OH, OW)`` or, with ``to_matrix``, ``(N*OH*OW, C*KH*KW)`` → an image of
    ``img_shape (N, C, H, W)`` with overlapping patches summed.
    """
    return Col2im(img_shape, kernel_size, stride, pad, to_matrix).forward(col)


# =============================================================================
# Convolution
# =============================================================================
def _check_weights(op: str, x: Any, W: Any, b: Any, channel_axis: int) -> None:
    """Check a 4-D ``x``, a ``W`` whose axis ``channel_axis`` holds x's channels (1 for conv2d's
    ``(OC, C, KH, KW)``, 0 for deconv2d's ``(C, OC, KH, KW)``) and a bias of the other channel count."""
    _check_image(op, x)
    c = x.shape[1]
    if W.ndim != 4 or W.shape[channel_axis] != c:
        expected = f'(OC, {c}, KH, KW)' if channel_axis == 1 else f'({c}, OC, KH, KW)'
        raise ValueError(f'{op}: W of shape {W.shape} does not fit x of shape {x.shape} '
                         f'(expected W {expected})')
    oc = W.shape[1 - channel_axis]
    if b is not None and b.shape != (oc,):
        raise ValueError(f'{op}: b of shape {b.shape} does not fit W of shape {W.shape} '
                         f'(expected ({oc},))')


_scratch = threading.local()


def _chunk_buffer(xp: Any, size: int, dtype: Any, role: str) -> Any:
    """Flat scratch of at least ``size`` elements for one ``role`` of a kernel; a chunk's arrays are
    reshaped prefixes of it, so a smaller last chunk is still contiguous.

    On the CPU, buffers of up to a few chunks are kept per thread and reused by the next call: a
    fresh multi-megabyte array is a fresh mapping whose every page faults on first touch, which
    costs more than the copy that fills it. Scratch never escapes the kernel that takes it.
    """
    if xp is not np or size * np.dtype(dtype).itemsize > 2 * _CHUNK_BYTES:
        return xp.empty(size, dtype=dtype)
    cache = _scratch.__dict__
    buffer = cache.get(role)
    if buffer is None or buffer.size < size or buffer.dtype != dtype:
        buffer = cache[role] = np.empty(size, dtype=dtype)
    return buffer[:size]


def _add_into(target: Any, values: Any) -> None:
    """``target += values`` in place (a kernel for split_apply)."""
    get_array_module(target).add(target, values, out=target)


def _patch_matrix(buffer: Any, view: Any, chunk: slice, ones_row: bool = False) -> Any:
    """Copy the chunk's patches into ``buffer`` as the matrix ``(C*KH*KW, B*OH*OW)``: rows in W's
    ``(C, KH, KW)`` order, columns image by image. Image-major columns make each chunk one wide GEMM,
    which OpenBLAS runs faster than a batch of per-image ones. With ``ones_row`` a last row of ones
    is appended, so that the same GEMM also sums the other operand's rows (or adds a bias)."""
    n, c, kh, kw, oh, ow = view[chunk].shape
    k, columns = c * kh * kw, n * oh * ow
    patches = buffer[:k * columns].reshape(c, kh, kw, n, oh, ow)
    # Written through a (B, C, KH, KW, OH, OW) view so that the copy splits over images.
    split_apply(get_array_module(buffer).copyto, patches.transpose(3, 0, 1, 2, 4, 5), view[chunk])
    if not ones_row:
        return patches.reshape(k, columns)
    matrix = buffer[:(k + 1) * columns].reshape(k + 1, columns)
    matrix[k] = 1
    return matrix


def _image_patches(buffer: Any, view: Any, chunk: slice, ones_row: bool) -> Any:
    """The chunk's patches as one matrix per image, ``(B, C*KH*KW (+ 1), OH*OW)`` in ``buffer``, with
    a last row of ones when ``ones_row``: the operands of per-image GEMMs (``_PER_IMAGE_MAX_K``)."""
    n, c, kh, kw, oh, ow = view[chunk].shape
    k, p = c * kh * kw, oh * ow
    rows = k + 1 if ones_row else k
    patches = buffer[:n * rows * p].reshape(n, rows, p)
    split_apply(get_array_module(buffer).copyto, patches[:, :k].reshape(n, c, kh, kw, oh, ow), view[chunk])
    if ones_row:
        patches[:, k] = 1
    return patches


def _conv_forward(x: Any, W: Any, b: Any, stride: tuple[int, int], pad: tuple[int, int]) -> Any:
    """``conv2d`` on arrays: per batch chunk, copy the patches and run one GEMM."""
    xp = get_array_module(x)
    _check_weights('conv2d', x, W, b, channel_axis=1)
    oc, c, kh, kw = W.shape
    n = x.shape[0]
    oh, ow = _out_hw('conv2d', x.shape, (kh, kw), stride, pad)
    k, p = c * kh * kw, oh * ow
    dtype = xp.result_type(x, W)
    W_matrix = W.reshape(oc, k)
    bias = None if b is None else b.reshape(oc, 1)
    if xp is np and stride == (1, 1) and k >= _PER_IMAGE_MAX_K and _FLAT_STRIDE1:
        y = _memory.empty(np, (n, oc, oh, ow), dtype)
        return _conv_flat(np.ascontiguousarray(_pad(x, pad)), W_matrix, bias, y, (kh, kw))
    view = _windows(_pad(x, pad), (kh, kw), stride, (oh, ow))
    y = _memory.empty(xp, (n, oc, p), dtype)
    chunks, parts = _batch_chunks(xp, n, k * p * dtype.itemsize)
    if k < _PER_IMAGE_MAX_K:
        return _conv_per_image(view, W_matrix, bias, y, chunks, parts).reshape(n, oc, oh, ow)

    def convolve(group: list[slice]) -> None:
        largest = group[0].stop - group[0].start
        patch_buffer = _chunk_buffer(xp, k * largest * p, dtype, 'patches')
        product_buffer = _chunk_buffer(xp, oc * largest * p, dtype, 'product')
        for chunk in group:
            size = chunk.stop - chunk.start
            product = product_buffer[:oc * size * p].reshape(oc, size * p)
            xp.matmul(W_matrix, _patch_matrix(patch_buffer, view, chunk), out=product)
            if bias is not None:
                # On the GEMM's contiguous rows: NumPy is several times slower on strided blocks.
                split_apply(_add_into, product, bias)
            # (OC, B, P) → the output's (B, OC, P).
            split_apply(xp.copyto, y[chunk], product.reshape(oc, size, p).transpose(1, 0, 2))

    _run_chunks(convolve, chunks, parts)
    return y.reshape(n, oc, oh, ow)


def _conv_flat(x_padded: Any, W_matrix: Any, bias: Any, y: Any, kernel: tuple[int, int]) -> Any:
    """conv2d with stride 1 on the CPU, image by image: the patches as whole runs of the flattened
    image (``_flat_windows``), a row of ones for the bias, one GEMM into a wide product in cache and
    its valid columns copied into ``y (N, OC, OH, OW)``. Every array a step touches fits a core's L2."""
    n, c, _, _ = x_padded.shape
    oc, k = W_matrix.shape
    oh, ow = y.shape[2:]
    view, length, wp = _flat_windows(x_padded, kernel, (oh, ow))
    if bias is not None:
        W_matrix = np.concatenate([W_matrix, bias], axis=1)
    rows = W_matrix.shape[1]

    def convolve(images: range) -> None:
        patches = _chunk_buffer(np, rows * length, y.dtype, 'patches').reshape(rows, length)
        patch_runs = patches[:k].reshape(c, *kernel, length)
        patches[k:] = 1
        wide = _chunk_buffer(np, oc * oh * wp, y.dtype, 'product').reshape(oc, oh * wp)
        valid = wide.reshape(oc, oh, wp)[:, :, :ow]
        for image in images:
            np.copyto(patch_runs, view[image])
            np.matmul(W_matrix, patches, out=wide[:, :length])
            np.copyto(y[image], valid)

    _run_image_groups(convolve, n)
    return y


def _conv_per_image(view: Any, W_matrix: Any, bias: Any, y: Any, chunks: list[slice], parts: int) -> Any:
    """conv2d's GEMMs image by image (a short patch length: ``_PER_IMAGE_MAX_K``), each written
    straight into ``y (N, OC, P)``; the bias rides along as a last column of the weight."""
    xp = get_array_module(y)
    if bias is not None:
        W_matrix = xp.concatenate([W_matrix, bias], axis=1)
    rows = W_matrix.shape[1]

    def convolve(group: list[slice]) -> None:
        largest = group[0].stop - group[0].start
        patch_buffer = _chunk_buffer(xp, largest * rows * y.shape[2], y.dtype, 'patches')
        for chunk in group:
            xp.matmul(W_matrix, _image_patches(patch_buffer, view, chunk, bias is not None), out=y[chunk])

    _run_chunks(convolve, chunks, parts)
    return y


def _deconv_forward(x: Any, W: Any, b: Any, stride: tuple[int, int], pad: tuple[int, int],
                    outsize: tuple[int, int] | None) -> Any:
    """``deconv2d`` on arrays: per batch chunk, one batched GEMM gives every input pixel times the
    kernel (the output's patches), which are then folded (summed) into the output."""
    xp = get_array_module(x)
    _check_weights('deconv2d', x, W, b, channel_axis=0)
    c, oc, kh, kw = W.shape
    n, _, h, w = x.shape
    out_h, out_w = _deconv_outsize((h, w), (kh, kw), stride, pad, outsize)
    if stride == (1, 1):
        y = _deconv_stride1(x, W, pad, (out_h, out_w))
    else:
        ph, pw = pad
        dtype = xp.result_type(x, W)
        W_t = W.reshape(c, oc * kh * kw).T
        x_flat = x.reshape(n, c, h * w)
        image = _memory.zeros(xp, (n, oc, out_h + 2 * ph, out_w + 2 * pw), dtype)
        chunks, parts = _batch_chunks(xp, n, oc * kh * kw * h * w * dtype.itemsize)

        def fold(group: list[slice]) -> None:
            largest = group[0].stop - group[0].start
            buffer = _chunk_buffer(xp, largest * oc * kh * kw * h * w, dtype, 'col').reshape(
                largest, oc * kh * kw, h * w)
            for chunk in group:
                col = buffer[:chunk.stop - chunk.start]
                xp.matmul(W_t, x_flat[chunk], out=col)
                _fold_into(image[chunk], col.reshape(-1, oc, kh, kw, h, w), stride)

        _run_chunks(fold, chunks, parts)
        y = image[:, :, ph:ph + out_h, pw:pw + out_w]
    if b is not None:
        y += b.reshape(1, oc, 1, 1)
    return y


def _widened_input(xp: Any, size: int, c: int, hw: tuple[int, int], wp: int, kw: int, dtype: Any) -> Any:
    """``_deconv_stride1``'s widened input buffer, ``(B >= size, C, H*WP + 2*(KW-1))``: zeros but for
    the ``H x W`` pixels each chunk writes. Only those are ever rewritten, so on the CPU the buffer is
    kept per thread for the next call of the same geometry and its zeros are written once."""
    shape = (c, hw[0] * wp + 2 * (kw - 1))
    geometry = (shape, hw, wp, kw, np.dtype(dtype))
    if xp is not np:
        return xp.zeros((size,) + shape, dtype=dtype)
    kept = _scratch.__dict__.get('widened')
    if kept is None or kept[0] != geometry or kept[1].shape[0] < size:
        kept = _scratch.__dict__['widened'] = (geometry, np.zeros((size,) + shape, dtype=dtype))
    return kept[1]


def _deconv_stride1(x: Any, W: Any, pad: tuple[int, int], out_hw: tuple[int, int]) -> Any:
    """deconv2d with stride 1, folding with contiguous adds over KH row offsets only.

    Each input row is widened with zeros to the padded output width ``WP``, so the plane of
    kernel offset ``(i, j)`` lands on one contiguous span of the flattened padded output, at
    ``i*WP + j`` (the zero columns add nothing where they spill over). The KW column offsets are
    folded inside the GEMM: its right operand holds the flat input shifted by ``j = 0..KW-1``
    (``(C*KW, L)`` per image) and its weight is ``(OC*KH, C*KW)``, so the GEMM writes KW times fewer
    values than full patches and only KH adds remain. Each image's GEMM columns are padded with
    zeros to the length of a whole output plane, so that a row offset's contributions to every
    image of a chunk form one contiguous run per channel: NumPy adds long runs several times
    faster than the same values as a strided block.
    """
    xp = get_array_module(x)
    c, oc, kh, kw = W.shape
    n, _, h, w = x.shape
    ph, pw = pad
    out_h, out_w = out_hw
    hp, wp = out_h + 2 * ph, out_w + 2 * pw  # = (H + KH - 1, W + KW - 1)
    length = h * wp + kw - 1  # span of one row offset's contribution within a plane
    plane = hp * wp + kw - 1  # one image's flattened padded output, with room for the spill
    tail = (kh - 1) * wp  # where the last image's higher row offsets spill past the chunk
    dtype = xp.result_type(x, W)
    W_rows = W.transpose(1, 2, 0, 3).reshape(oc * kh, c * kw)  # [(oc, i), (c, j)]
    y = _memory.empty(xp, (n, oc, out_h, out_w), dtype)
    chunks, parts = _batch_chunks(xp, n, (c * kw + oc * kh + oc) * plane * dtype.itemsize)

    def fold(group: list[slice]) -> None:
        size = group[0].stop - group[0].start
        extended = _widened_input(xp, size, c, (h, w), wp, kw, dtype)
        interior = extended[:, :, kw - 1:kw - 1 + h * wp].reshape(-1, c, h, wp)
        shifted_buffer = _chunk_buffer(xp, c * kw * size * plane, dtype, 'shifted')
        rows_buffer = _chunk_buffer(xp, oc * kh * size * plane, dtype, 'rows')
        planes_buffer = _chunk_buffer(xp, oc * (size * plane + tail), dtype, 'planes')
        for chunk in group:
            size = chunk.stop - chunk.start
            span = size * plane
            interior[:size, :, :, :w] = x[chunk]
            # (C, KW, B, plane): one GEMM operand for the chunk, zero past each image's span.
            shifted = shifted_buffer[:c * kw * span].reshape(c, kw, size, plane)
            shifted[:, :, :, length:] = 0
            for j in range(kw):
                split_apply(xp.copyto, shifted[:, j, :, :length].transpose(1, 0, 2),
                            extended[:size, :, kw - 1 - j:kw - 1 - j + length])
            rows = rows_buffer[:oc * kh * span].reshape(oc * kh, span)
            xp.matmul(W_rows, shifted.reshape(c * kw, span), out=rows)
            rows = rows.reshape(oc, kh, span)
            # Row offset i of every image lands i*WP further along its plane: one run per channel.
            planes = planes_buffer[:oc * (span + tail)].reshape(oc, span + tail)
            split_apply(xp.copyto, planes[:, :span], rows[:, 0])
            planes[:, span:] = 0
            for i in range(1, kh):
                split_apply(_add_into, planes[:, i * wp:i * wp + span], rows[:, i])
            images = planes[:, :span].reshape(oc, size, plane)[:, :, :hp * wp].reshape(oc, size, hp, wp)
            split_apply(xp.copyto, y[chunk],
                        images[:, :, ph:ph + out_h, pw:pw + out_w].transpose(1, 0, 2, 3))

    _run_chunks(fold, chunks, parts)
    return y


def _deconv_outsize(in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                    pad: tuple[int, int], outsize: Any) -> tuple[int, int]:
    """Output size of deconv2d; an explicit ``outsize`` must be one conv2d maps back to ``in_hw``."""
    if outsize is None:
        out = tuple(get_deconv_outsize(s, k, st, p) for s, k, st, p in zip(in_hw, kernel, stride, pad))
    else:
        out = int_pair('deconv2d', 'outsize', outsize, 1)
    back = tuple(get_conv_outsize(o, k, st, p) for o, k, st, p in zip(out, kernel, stride, pad))
    if out[0] < 1 or out[1] < 1 or back != tuple(in_hw):
        raise ValueError(f'deconv2d: output size {out} is inconsistent with input size {tuple(in_hw)}, '
                         f'kernel {kernel}, stride {stride}, pad {pad} (conv2d of it would give {back})')
    return out


class Conv2d(Function):
    """``conv2d``: ``x (N, C, H, W)``, ``W (OC, C, KH, KW)`` and optional ``b (OC,)`` →
    ``(N, OC, OH, OW)``. Backward: deconv2d for x (skipped for a Constant), Conv2DGradW for W."""

    def __init__(self, stride: IntPair = 1, pad: IntPair = 0) -> None:
        self.stride = int_pair('conv2d', 'stride', stride, 1)
        self.pad = int_pair('conv2d', 'pad', pad, 0)

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:
        return _conv_forward(x, W, b, self.stride, self.pad)

    def backward(self, gy: Variable) -> tuple[Variable | None, ...]:
        x, W = self.inputs[0], self.inputs[1]
        gx = None
        if x.__class__ is not Constant:
            gx = deconv2d(gy, W, None, self.stride, self.pad, outsize=x.shape[2:])
        with_bias = len(self.inputs) == 3
        if W.__class__ is Constant:
            return (gx, None, _sum(gy, axis=(0, 2, 3))) if with_bias else (gx, None)
        grads = Conv2DGradW(W.shape[2:], self.stride, self.pad, with_bias)(x, gy)
        return (gx, *grads) if with_bias else (gx, grads)


def conv2d(x: Any, W: Any, b: Any = None, stride: IntPair = 1, pad: IntPair = 0) -> Variable:
    """2-D convolution (cross-correlation, as in every framework) of ``x (N, C, H, W)`` with
    ``W (OC, C, KH, KW)`` plus ``b (OC,)`` → ``(N, OC, OH, OW)``, ``OH = (H + 2*PH - KH) // SH + 1``.

    ``stride`` and ``pad`` (zero padding) are ints or ``(h, w)`` pairs. Example:
    ``conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))).shape`` → ``(1, 1, 2, 2)``.
    """
    if b is None:
        return Conv2d(stride, pad)(x, W)
    return Conv2d(stride, pad)(x, W, b)


class Deconv2d(Function):
    """``deconv2d``: ``x (N, C, H, W)``, ``W (C, OC, KH, KW)`` and optional ``b (OC,)`` →
    ``(N, OC, OH, OW)``. Backward: conv2d for x, Conv2DGradW (roles swapped) for W."""

    def __init__(self, stride: IntPair = 1, pad: IntPair = 0, outsize: IntPair | None = None) -> None:
        self.stride = int_pair('deconv2d', 'stride', stride, 1)
        self.pad = int_pair('deconv2d', 'pad', pad, 0)
        self.outsize = None if outsize is None else int_pair('deconv2d', 'outsize', outsize, 1)

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:
        return _deconv_forward(x, W, b, self.stride, self.pad, self.outsize)

    def backward(self, gy: Variable) -> tuple[Variable | None, ...]:
        x, W = self.inputs[0], self.inputs[1]
        gx = None if x.__class__ is Constant else conv2d(gy, W, None, self.stride, self.pad)
        # deconv2d(x, W) is conv2d's input gradient for upstream x, so its W-gradient has the same
        # form with the roles swapped: the "image" is gy and the "upstream gradient" is x.
        gW = None if W.__class__ is Constant else Conv2DGradW(W.shape[2:], self.stride, self.pad)(gy, x)
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, _sum(gy, axis=(0, 2, 3))


def deconv2d(x: Any, W: Any, b: Any = None, stride: IntPair = 1, pad: IntPair = 0,
             outsize: IntPair | None = None) -> Variable:
    """Transposed convolution of ``x (N, C, H, W)`` with ``W (C, OC, KH, KW)`` plus ``b (OC,)``
    → ``(N, OC, OH, OW)``: the gradient of conv2d with respect to its input.

    ``OH = SH*(H - 1) + KH - 2*PH`` unless ``outsize (OH, OW)`` is given (it must satisfy
    ``(OH + 2*PH - KH) // SH + 1 == H``, which leaves a choice when the stride does not divide).
    """
    if b is None:
        return Deconv2d(stride, pad, outsize)(x, W)
    return Deconv2d(stride, pad, outsize)(x, W, b)


class Conv2DGradW(Function):
    """Gradient of conv2d with respect to its weight: ``(x (N, C, H, W), gy (N, OC, OH, OW))`` →
    ``(OC, C, KH, KW)``, the sum over images of ``gy (OC, OH*OW) @ patches(x).T``.

    With ``with_bias`` it also returns the bias gradient ``gy.sum(axis=(0, 2, 3))``, computed by the
    same GEMM through a row of ones appended to the patches, so ``gy`` is read once.
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair, pad: IntPair, with_bias: bool = False) -> None:
        self.kernel_size = int_pair('conv2d', 'kernel_size', kernel_size, 1)
        self.stride = int_pair('conv2d', 'stride', stride, 1)
        self.pad = int_pair('conv2d', 'pad', pad, 0)
        self.with_bias = with_bias

    def forward(self, x: Any, gy: Any) -> Any:
        xp = get_array_module(x)
        n, c = x.shape[:2]
        oc = gy.shape[1]
        kh, kw = self.kernel_size
        oh, ow = _out_hw('conv2d', x.shape, self.kernel_size, self.stride, self.pad)
        if gy.shape != (n, oc, oh, ow):
            raise ValueError(f'conv2d: gradient of shape {gy.shape} does not fit input of shape {x.shape} '
                             f'(expected ({n}, OC, {oh}, {ow}))')
        k, p = c * kh * kw, oh * ow
        rows = k + 1 if self.with_bias else k
        dtype = xp.result_type(x, gy)
        # The patches are recomputed chunk by chunk (cheap from cache) rather than kept from forward.
        view = _windows(_pad(x, self.pad), self.kernel_size, self.stride, (oh, ow))
        gy_flat = gy.reshape(n, oc, p)
        chunks, parts = _batch_chunks(xp, n, k * p * dtype.itemsize)

        def accumulate(group: list[slice]) -> Any:
            largest = group[0].stop - group[0].start
            patch_buffer = _chunk_buffer(xp, rows * largest * p, dtype, 'patches')
            if k < _PER_IMAGE_MAX_K:  # image by image: patches (B, rows, P) @ gy (B, P, OC)
                total = None
                for chunk in group:
                    patches = _image_patches(patch_buffer, view, chunk, self.with_bias)
                    product = xp.matmul(patches, gy_flat[chunk].transpose(0, 2, 1)).sum(axis=0)
                    total = product if total is None else xp.add(total, product, out=total)
                return total
            gy_buffer = _chunk_buffer(xp, oc * largest * p, dtype, 'gy')
            total = None
            for chunk in group:
                size = chunk.stop - chunk.start
                # gy as (OC, B*P), columns image by image like the patch matrix's, for one GEMM.
                gy_matrix = gy_buffer[:oc * size * p].reshape(oc, size, p)
                split_apply(xp.copyto, gy_matrix.transpose(1, 0, 2), gy_flat[chunk])
                patches = _patch_matrix(patch_buffer, view, chunk, ones_row=self.with_bias)
                # (rows, OC) = patches @ gy.T: OpenBLAS runs this 20% faster than gy @ patches.T,
                # whose right operand is the large transposed one; the small sum is transposed last.
                product = xp.matmul(patches, gy_matrix.reshape(oc, size * p).T)
                total = product if total is None else xp.add(total, product, out=total)
            return total

        totals = _run_chunks(accumulate, chunks, parts)
        total = totals[0]
        for other in totals[1:]:
            total += other
        gW = xp.ascontiguousarray(total[:k].T).reshape(oc, c, kh, kw)
        if self.with_bias:
            return gW, total[k].copy()
        return gW

    def backward(self, gW_grad: Variable | None,
                 gb_grad: Variable | None = None) -> tuple[Variable | None, Variable | None]:
        x, gy = self.inputs
        gx = ggy = None
        if gW_grad is not None:
            if x.__class__ is not Constant:
                gx = deconv2d(gy, gW_grad, None, self.stride, self.pad, outsize=x.shape[2:])
            if gy.__class__ is not Constant:
                ggy = conv2d(x, gW_grad, None, self.stride, self.pad)
        if gb_grad is not None and gy.__class__ is not Constant:
            spread = broadcast_to(reshape_sum_backward(gb_grad, gy.shape, (0, 2, 3), False), gy.shape)
            ggy = spread if ggy is None else ggy + spread
        return gx, ggy


# =============================================================================
# The book's simple versions: the same results from im2col and basic ops
# =============================================================================
def conv2d_simple(x: Any, W: Any, b: Any = None, stride: IntPair = 1, pad: IntPair = 0) -> Variable:
    """conv2d written as ``im2col`` → ``linear`` → reshape/transpose; same shapes and results.

    ``x (N, C, H, W)``, ``W (OC, C, KH, KW)``, ``b (OC,)`` → ``(N, OC, OH, OW)``.
    """
    _check_image('conv2d', x)
    if W.ndim != 4 or W.shape[1] != x.shape[1]:
        raise ValueError(f'conv2d: W of shape {W.shape} does not fit x of shape {x.shape} '
                         f'(expected W (OC, {x.shape[1]}, KH, KW))')
    n = x.shape[0]
    oc, _, kh, kw = W.shape
    stride = int_pair('conv2d', 'stride', stride, 1)
    pad = int_pair('conv2d', 'pad', pad, 0)
    oh, ow = _out_hw('conv2d', x.shape, (kh, kw), stride, pad)
    col = im2col(x, (kh, kw), stride, pad, to_matrix=True)
    y = linear(col, transpose(reshape(W, (oc, -1))), b)
    return transpose(reshape(y, (n, oh, ow, oc)), (0, 3, 1, 2))
