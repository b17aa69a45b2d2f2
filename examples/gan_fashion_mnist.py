"""A generative adversarial network that learns to draw Fashion-MNIST clothes from noise.

Generator: z (64 normal draws) → Linear 256 → BatchNorm → ReLU → Linear 512 → BatchNorm → ReLU →
Linear 784 → tanh, reshaped to (1, 28, 28) images in [-1, 1] (the training images are scaled to that
range too). Discriminator: flatten → Linear 512 → leaky ReLU → dropout 0.3 → Linear 256 → leaky ReLU
→ dropout 0.3 → Linear 1 (a logit). Both are trained with the sigmoid cross-entropy and Adam(alpha
2e-4, beta1 0.5): the discriminator to tell real (target 0.9, one-sided label smoothing) from fake
(target 0), the generator with the non-saturating loss (its fakes labelled real, target 1). The
tanh output, the dropout and the smoothing each keep the discriminator from winning too early, which
gives more varied samples (shoes, trousers and bags, not only shirts) for the same training time.
Every ``--sample-every`` epochs a grid of samples from one fixed batch of noise is written, so
successive grids are comparable.

Run: ``python examples/gan_fashion_mnist.py [--epochs 10] [--train-size 0]`` (0: all 60,000 images;
about 17 seconds an epoch on two CPU cores, 2.8 minutes for the 10 epochs).
Writes ``out/gan_fashion_mnist_epoch<k>.png`` along the way and ``out/gan_fashion_mnist.png`` (the
last grid) at the end.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence

import numpy as np
from _common import add_subset_options, example_parser, int_at_least, keep_first, progress
from _plotting import pyplot, save_figure

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import DataLoader, Model, optimizers, transforms
from dezero.utils import atomic_file

IMAGE_SHAPE = (1, 28, 28)


class Generator(Model):
    """(N, latent) float32 noise → (N, 1, 28, 28) images with pixels in (-1, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = L.Linear(256)
        self.bn1 = L.BatchNorm()
        self.fc2 = L.Linear(512)
        self.bn2 = L.BatchNorm()
        self.fc3 = L.Linear(int(np.prod(IMAGE_SHAPE)))

    def forward(self, z: dezero.Variable) -> dezero.Variable:
        h = F.relu(self.bn1(self.fc1(z)))
        h = F.relu(self.bn2(self.fc2(h)))
        return F.reshape(F.tanh(self.fc3(h)), (len(z),) + IMAGE_SHAPE)


class Discriminator(Model):
    """(N, 1, 28, 28) images → (N, 1) logits of "this image is real"."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = L.Linear(512)
        self.fc2 = L.Linear(256)
        self.fc3 = L.Linear(1)

    def forward(self, x: dezero.Variable) -> dezero.Variable:
        h = F.dropout(F.leaky_relu(self.fc1(F.flatten(x)), 0.2), 0.3)
        h = F.dropout(F.leaky_relu(self.fc2(h), 0.2), 0.3)
        return self.fc3(h)


def sample_noise(n: int, latent_size: int) -> np.ndarray:
    """(n, latent_size) float32 standard-normal draws."""
    return np.random.randn(n, latent_size).astype(np.float32)


def save_grid(images: np.ndarray, path: str, title: str) -> None:
    """Tile (N, 1, H, W) images in [-1, 1] into a square-ish grid and write it atomically to ``path``."""
    plt = pyplot()

    images = (images + 1) / 2
    n, _, h, w = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    # A light grey gap (not white, which is the images' background) separates the tiles.
    canvas = np.full((rows * (h + 2), cols * (w + 2)), 0.15, dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * (h + 2) + 1:r * (h + 2) + 1 + h, c * (w + 2) + 1:c * (w + 2) + 1 + w] = image[0]
    fig, ax = plt.subplots(figsize=(cols * 0.6, rows * 0.6 + 0.4))
    ax.imshow(canvas, cmap='gray_r', vmin=0.0, vmax=1.0)
    ax.set_axis_off()
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def load_images(train_size: int) -> dezero.Dataset:
    """Fashion-MNIST training images as (1, 28, 28) float32 in [-1, 1], optionally cut to a prefix."""
    transform = transforms.Compose([transforms.ToFloat(), transforms.Normalize(mean=127.5, std=127.5)])
    return keep_first(dezero.datasets.FashionMNIST(train=True, transform=transform), train_size)


def main(argv: Sequence[str] | None = None) -> dict[str, list[float]]:
    parser = example_parser(__doc__)
    parser.add_argument('--epochs', type=int_at_least(1), default=10, help='passes over the training set')
    parser.add_argument('--batch-size', type=int_at_least(1), default=128,
                        help='real images (and as many fakes) per training step')
    parser.add_argument('--latent-size', type=int_at_least(1), default=64,
                        help="length of the generator's noise vector z")
    parser.add_argument('--lr', type=float, default=2e-4, help="Adam's alpha for both networks")
    parser.add_argument('--real-label', type=float, default=0.9,
                        help="the discriminator's target for real images (1 disables smoothing)")
    parser.add_argument('--sample-every', type=int_at_least(1), default=2,
                        help='write a sample grid every k epochs (and after the last)')
    add_subset_options(parser, test=False)
    parser.add_argument('--max-iters', type=int_at_least(0), default=0,
                        help='cap training steps per epoch (0: no cap)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of np.random: weights, noise, dropout and shuffling')
    parser.add_argument('--out-dir', default='out', help='directory for the sample grids')
    args = parser.parse_args(argv)

    np.random.seed(args.seed)
    dataset = load_images(args.train_size)
    loader = DataLoader(dataset, args.batch_size)
    generator, discriminator = Generator(), Discriminator()
    opt_g = optimizers.Adam(alpha=args.lr, beta1=0.5).setup(generator)
    opt_d = optimizers.Adam(alpha=args.lr, beta1=0.5).setup(discriminator)
    fixed_noise = sample_noise(64, args.latent_size)
    os.makedirs(args.out_dir, exist_ok=True)
    print(f'GAN on {len(dataset)} Fashion-MNIST images: batch {args.batch_size}, latent '
          f'{args.latent_size}, Adam(alpha={args.lr}, beta1=0.5), {args.epochs} epochs')

    history: dict[str, list[float]] = {'loss_d': [], 'loss_g': [], 'd_real': [], 'd_fake': []}
    start = time.perf_counter()
    last_grid = None
    steps = min(args.max_iters, loader.max_iter) if args.max_iters else loader.max_iter
    for epoch in range(1, args.epochs + 1):
        sums = dict.fromkeys(history, 0.0)
        count = 0
        for x, _ in progress(loader, f'epoch {epoch}/{args.epochs}', total=steps):
            if count == steps:
                break  # the next ``for`` starts a fresh epoch
            n = len(x)
            real_targets = np.full((n, 1), args.real_label, dtype=np.float32)
            fake_targets = np.zeros((n, 1), dtype=np.float32)
            generator_targets = np.ones((n, 1), dtype=np.float32)
            fake = generator(sample_noise(n, args.latent_size))

            # Discriminator step on detached fakes: its loss must not reach the generator.
            logits_real = discriminator(x)
            logits_fake = discriminator(fake.data)
            loss_d = (F.sigmoid_cross_entropy(logits_real, real_targets)
                      + F.sigmoid_cross_entropy(logits_fake, fake_targets))
            discriminator.cleargrads()
            loss_d.backward()
            opt_d.update()

            # Generator step through the updated discriminator; only the generator is updated.
            loss_g = F.sigmoid_cross_entropy(discriminator(fake), generator_targets)
            generator.cleargrads()
            loss_g.backward()
            opt_g.update()

            sums['loss_d'] += float(loss_d.data)
            sums['loss_g'] += float(loss_g.data)
            sums['d_real'] += float(np.mean(F.sigmoid(logits_real).data))
            sums['d_fake'] += float(np.mean(F.sigmoid(logits_fake).data))
            count += 1
        for key in history:
            history[key].append(sums[key] / count)
        print(f'epoch {epoch}: loss D {history["loss_d"][-1]:.4f}, loss G {history["loss_g"][-1]:.4f}, '
              f'D(real) {history["d_real"][-1]:.3f}, D(fake) {history["d_fake"][-1]:.3f} '
              f'({time.perf_counter() - start:.0f} s)', flush=True)

        if epoch % args.sample_every == 0 or epoch == args.epochs:
            with dezero.no_grad(), dezero.test_mode():
                samples = generator(fixed_noise).data
            last_grid = os.path.join(args.out_dir, f'gan_fashion_mnist_epoch{epoch}.png')
            save_grid(samples, last_grid, f'GAN samples after epoch {epoch}')
            print(f'  samples written to {last_grid}')

    final_path = os.path.join(args.out_dir, 'gan_fashion_mnist.png')
    if last_grid is not None:
        with atomic_file(final_path, suffix='.png') as tmp_path:
            shutil.copyfile(last_grid, tmp_path)
        print(f'final samples written to {final_path}')
    return history


if __name__ == '__main__':
    main()
