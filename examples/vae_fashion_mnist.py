"""A variational autoencoder on Fashion-MNIST: reconstructions and new samples from the prior.

Encoder: 784 pixels → Linear 512 → ReLU → two heads, mu and log-variance of a diagonal Gaussian
over a ``--latent-size`` code. Reparameterisation z = mu + exp(log_var / 2) * eps (eps ~ N(0, 1))
keeps sampling differentiable. Decoder: z → Linear 512 → ReLU → Linear 784 → sigmoid.
Loss per image (averaged over the batch): binary cross-entropy of the pixels, summed over them, plus
KL(q(z|x) || N(0, I)) = -1/2 sum(1 + log_var - mu^2 - exp(log_var)). The cross-entropy is computed
from the decoder's logits (``F.sigmoid_cross_entropy``): the same value as the binary cross-entropy of
the sigmoid output, without log(0) when the sigmoid saturates.

Run: ``python examples/vae_fashion_mnist.py [--epochs 10] [--train-size 0]`` (0: all 60,000 images;
about 70 seconds on two CPU cores, reaching a test loss of about 245 nats per image). Writes
``out/vae_fashion_mnist.png``: test images, their reconstructions, and images decoded from random
codes.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
from _common import add_subset_options, example_parser, int_at_least, keep_first, progress
from _plotting import pyplot, save_figure

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import DataLoader, Model, optimizers, transforms

N_PIXELS = 28 * 28


class VAE(Model):
    """(N, 784) float32 pixels in [0, 1] → (decoder logits (N, 784), mu (N, latent), log_var (N, latent))."""

    def __init__(self, latent_size: int = 16, hidden_size: int = 512) -> None:
        super().__init__()
        self.latent_size = latent_size
        self.enc = L.Linear(hidden_size)
        self.enc_mu = L.Linear(latent_size)
        self.enc_log_var = L.Linear(latent_size)
        self.dec = L.Linear(hidden_size)
        self.dec_out = L.Linear(N_PIXELS)

    def encode(self, x: dezero.Variable) -> tuple[dezero.Variable, dezero.Variable]:
        h = F.relu(self.enc(x))
        return self.enc_mu(h), self.enc_log_var(h)

    def decode_logits(self, z: dezero.Variable) -> dezero.Variable:
        return self.dec_out(F.relu(self.dec(z)))

    def decode(self, z: dezero.Variable) -> dezero.Variable:
        """(N, latent) codes → (N, 784) pixel intensities in (0, 1)."""
        return F.sigmoid(self.decode_logits(z))

    def forward(self, x: dezero.Variable) -> tuple[dezero.Variable, dezero.Variable, dezero.Variable]:
        mu, log_var = self.encode(x)
        eps = np.random.randn(*mu.shape).astype(mu.dtype)
        z = mu + F.exp(0.5 * log_var) * eps
        return self.decode_logits(z), mu, log_var


def vae_loss(logits: dezero.Variable, x: np.ndarray, mu: dezero.Variable,
             log_var: dezero.Variable) -> tuple[dezero.Variable, dezero.Variable, dezero.Variable]:
    """(total, reconstruction, KL), each summed per image and averaged over the batch of N images."""
    n = len(x)
    reconstruction = F.sigmoid_cross_entropy(logits, x)  # summed over pixels, divided by N
    kl = -0.5 * F.sum(1 + log_var - mu ** 2 - F.exp(log_var)) / n
    return reconstruction + kl, reconstruction, kl


def load_images(train: bool, size: int) -> dezero.Dataset:
    """Flattened (784,) float32 Fashion-MNIST images in [0, 1], optionally cut to a prefix."""
    transform = transforms.Compose([transforms.Flatten(), transforms.ToFloat(),
                                    transforms.Normalize(mean=0.0, std=255.0)])
    return keep_first(dezero.datasets.FashionMNIST(train=train, transform=transform), size)


def evaluate(model: VAE, dataset: dezero.Dataset, batch_size: int = 500) -> float:
    """Mean loss per image over ``dataset`` (one random code per image), without a graph."""
    total = 0.0
    with dezero.no_grad():
        for x, _ in DataLoader(dataset, batch_size, shuffle=False):
            logits, mu, log_var = model(x)
            total += float(vae_loss(logits, x, mu, log_var)[0].data) * len(x)
    return total / len(dataset)


def plot_results(originals: np.ndarray, reconstructions: np.ndarray, samples: np.ndarray,
                 path: str) -> None:
    """Rows of originals, reconstructions and prior samples ((n, 784) each), written atomically."""
    plt = pyplot()

    rows = [('test images', originals), ('reconstructions', reconstructions),
            ('samples from N(0, I)', samples[:len(samples) // 2]),
            ('', samples[len(samples) // 2:])]
    cols = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.8, len(rows) * 0.95), squeeze=False)
    for r, (title, images) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_axis_off()
            if c < len(images):
                ax.imshow(images[c].reshape(28, 28), cmap='gray_r', vmin=0.0, vmax=1.0)
        if title:
            axes[r, 0].set_title(title, loc='left', fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> dict[str, list[float]]:
    parser = example_parser(__doc__)
    parser.add_argument('--epochs', type=int_at_least(1), default=10, help='passes over the training set')
    parser.add_argument('--batch-size', type=int_at_least(1), default=128, help='images per training step')
    parser.add_argument('--latent-size', type=int_at_least(1), default=16, help='length of the code z')
    parser.add_argument('--lr', type=float, default=1e-3, help="Adam's step size alpha")
    add_subset_options(parser)
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of np.random: weights, sampled codes and shuffling')
    parser.add_argument('--out-dir', default='out', help='directory for the plot')
    args = parser.parse_args(argv)

    np.random.seed(args.seed)
    train_set = load_images(True, args.train_size)
    test_set = load_images(False, args.test_size)
    loader = DataLoader(train_set, args.batch_size)
    model = VAE(args.latent_size)
    optimizer = optimizers.Adam(alpha=args.lr).setup(model)
    print(f'VAE (latent {args.latent_size}) on {len(train_set)} Fashion-MNIST images: batch '
          f'{args.batch_size}, Adam(alpha={args.lr}), {args.epochs} epochs')

    history: dict[str, list[float]] = {'loss': [], 'reconstruction': [], 'kl': [], 'test_loss': []}
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        sums = {'loss': 0.0, 'reconstruction': 0.0, 'kl': 0.0}
        for x, _ in progress(loader, f'epoch {epoch}/{args.epochs}'):
            logits, mu, log_var = model(x)
            loss, reconstruction, kl = vae_loss(logits, x, mu, log_var)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            for key, value in (('loss', loss), ('reconstruction', reconstruction), ('kl', kl)):
                sums[key] += float(value.data) * len(x)
        for key, total in sums.items():
            history[key].append(total / len(train_set))
        history['test_loss'].append(evaluate(model, test_set))
        print(f'epoch {epoch}: loss {history["loss"][-1]:.2f} (reconstruction '
              f'{history["reconstruction"][-1]:.2f} + KL {history["kl"][-1]:.2f}) | test loss '
              f'{history["test_loss"][-1]:.2f} ({time.perf_counter() - start:.0f} s)', flush=True)

    n_show = min(10, len(test_set))
    originals = np.stack([test_set[i][0] for i in range(n_show)])
    with dezero.no_grad():
        mu, _ = model.encode(originals)
        reconstructions = model.decode(mu).data
        samples = model.decode(np.random.randn(20, args.latent_size).astype(np.float32)).data
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, 'vae_fashion_mnist.png')
    plot_results(originals, reconstructions, samples, path)
    print(f'reconstructions and samples plotted to {path}')
    return history


if __name__ == '__main__':
    main()
