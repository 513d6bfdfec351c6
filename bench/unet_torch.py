"""PyTorch twin of flow's 2D U-Net (lib/tf/unet.ts), for bench/train-speed.ts to measure in the same run.

The same network layer for layer: per level two 3x3 'same' convolutions with bias, each followed by ReLU, 2x2 max
pooling; a bottleneck of filters * 2^depth; per decoder level a 2x2 stride-2 transposed convolution with bias,
concatenated [up, skip] on the channel axis, two 3x3 convolutions + ReLU; a 1x1 head with a sigmoid. No batch
norm. The same loss (BCE on probabilities clipped to [eps, 1 - eps], plus soft Dice per image with smoothing 1)
and optimiser (Adam, betas 0.9 / 0.999, its epsilon) as lib/train/losses.ts and lib/train/optimizers.ts.
Every setting (size, batch, filters, depth, lr, loss, epsilons, threads, steps) comes from the caller as JSON:
nothing here restates flow's figures. Prints one JSON line: the torch version, the parameter count (the
caller checks it against flow's model), train and inference images/s and peak RSS.

Optional settings: "device" ("cpu", default, or "cuda": batches are copied from pinned host memory each step, as
flow uploads them, and the GPU is synchronised around every timed step) and "tf32" (on CUDA: TF32 tensor-core
convolutions and matmuls, PyTorch's default for cuDNN convolutions; off: plain fp32, WebGPU's arithmetic).

Run: python3 bench/unet_torch.py '{"size": 64, "batch": 8, ...}'
"""

import json
import resource
import sys
import time

import torch
from torch import nn


def conv_block(inputs: int, width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, width, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, channels: int, classes: int, filters: int, depth: int):
        super().__init__()
        self.encoders = nn.ModuleList()
        width_in = channels
        for level in range(depth):
            width = filters * 2 ** level
            self.encoders.append(conv_block(width_in, width))
            width_in = width
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = conv_block(width_in, filters * 2 ** depth)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        below = filters * 2 ** depth
        for level in reversed(range(depth)):
            width = filters * 2 ** level
            self.ups.append(nn.ConvTranspose2d(below, width, 2, stride=2))
            self.decoders.append(conv_block(2 * width, width))
            below = width
        self.head = nn.Conv2d(below, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = decoder(torch.cat([up(x), skip], dim=1))
        return torch.sigmoid(self.head(x))


def loss_of(name: str, probabilities: torch.Tensor, target: torch.Tensor, epsilon: float, smooth: float) -> torch.Tensor:
    p = probabilities.clamp(epsilon, 1 - epsilon)
    bce = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    axes = list(range(2, probabilities.dim()))  # NCHW: per image and channel
    intersection = (probabilities * target).sum(axes)
    total = probabilities.sum(axes) + target.sum(axes)
    dice = 1 - ((2 * intersection + smooth) / (total + smooth)).mean()
    if name == 'bce':
        return bce
    if name == 'dice':
        return dice
    if name == 'bce_dice':
        return bce + dice
    raise SystemExit(f'unet_torch.py: loss {name!r} is not one the twin implements (bce, dice, bce_dice)')


def main() -> None:
    settings = json.loads(sys.argv[1])
    torch.set_num_threads(settings['threads'])
    torch.manual_seed(settings.get('seed', 1))
    device = torch.device(settings.get('device', 'cpu'))
    cuda = device.type == 'cuda'
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = settings.get('tf32', True)
        torch.backends.cuda.matmul.allow_tf32 = settings.get('tf32', True)
    size, batch = settings['size'], settings['batch']
    model = UNet(3, 1, settings['filters'], settings['depth']).to(device)
    params = sum(p.numel() for p in model.parameters())
    if settings['optimizer'] == 'adam':
        optimizer = torch.optim.Adam(model.parameters(), lr=settings['lr'], betas=(settings['beta1'], settings['beta2']),
                                     eps=settings['adamEpsilon'], weight_decay=settings['weightDecay'])
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=settings['lr'], momentum=settings['momentum'], weight_decay=settings['weightDecay'])
    generator = torch.Generator().manual_seed(7)
    # Two batches of items, as flow's bench: random normal images, sparse random binary masks.
    images = torch.randn(2 * batch, 3, size, size, generator=generator)
    masks = (torch.rand(2 * batch, 1, size, size, generator=generator) < 0.3).float()
    if cuda:
        images, masks = images.pin_memory(), masks.pin_memory()

    def synchronize() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    def train_step(step: int) -> float:
        start = (step % 2) * batch
        x = images[start:start + batch].to(device, non_blocking=True)
        y = masks[start:start + batch].to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(settings['loss'], model(x), y, settings['lossEpsilon'], settings['diceSmooth'])
        loss.backward()
        optimizer.step()
        return loss.item()

    for step in range(settings['warmup']):
        train_step(step)
    synchronize()
    began = time.perf_counter()
    final_loss = float('nan')
    for step in range(settings['steps']):
        final_loss = train_step(step)
    synchronize()
    train_seconds = time.perf_counter() - began

    model.eval()
    with torch.inference_mode():
        model(images[:batch].to(device)).cpu()  # warm-up pass
        synchronize()
        began = time.perf_counter()
        for start in range(0, 2 * batch, batch):
            model(images[start:start + batch].to(device, non_blocking=True)).cpu()
        synchronize()
        infer_seconds = time.perf_counter() - began

    print(json.dumps({
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'params': params,
        'trainImagesPerSec': settings['steps'] * batch / train_seconds,
        'inferImagesPerSec': 2 * batch / infer_seconds,
        'peakRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'device': torch.cuda.get_device_name(device) if cuda else 'cpu',
        'peakGpuMiB': torch.cuda.max_memory_allocated(device) / 2 ** 20 if cuda else None,
        'finalLoss': final_loss,
    }))


if __name__ == '__main__':
    main()
