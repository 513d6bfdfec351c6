#!/usr/bin/env python3
"""PyTorch twin of flow's Carvana U-Net (lib/tf/unet.ts: filters 16, depth 3, no batch norm; 3x3 'same'
convolutions with bias and ReLU, 2x2 max pooling, 2x2 stride-2 transposed convolutions, skip concatenation
[up, skip], a 1x1 sigmoid head), trained as flow's train stage trains it: Adam, BCE + soft Dice (per image,
smoothing 1), one training Dice per step read back on the host. Times training and inference steps on random
data and prints one JSON line per (size, batch). bench/gpu.sh runs it beside bench/gpu-train.ts on the same GPU.

  python3 bench/torch_unet.py --device cuda --sizes 128,256,512 --batches 8,16 --steps 10 [--tf32 on|off]
"""
import argparse
import json
import time

import torch
from torch import nn

EPSILON = 1e-7
DICE_SMOOTH = 1.0


class UNet(nn.Module):
    def __init__(self, in_channels=3, classes=1, filters=16, depth=3):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))

        self.encoders = nn.ModuleList()
        channels = in_channels
        for level in range(depth):
            width = filters * 2 ** level
            self.encoders.append(block(channels, width))
            channels = width
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = block(channels, filters * 2 ** depth)
        channels = filters * 2 ** depth
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(depth)):
            width = filters * 2 ** level
            self.ups.append(nn.ConvTranspose2d(channels, width, 2, stride=2))
            self.decoders.append(block(2 * width, width))
            channels = width
        self.head = nn.Conv2d(channels, classes, 1)

    def forward(self, x):
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = decoder(torch.cat([up(x), skip], dim=1))
        return torch.sigmoid(self.head(x))


def bce_dice(p, target):
    p = p.clamp(EPSILON, 1 - EPSILON)
    bce = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    dims = (2, 3)
    intersection = (p * target).sum(dims)
    total = p.sum(dims) + target.sum(dims)
    dice = (2 * intersection + DICE_SMOOTH) / (total + DICE_SMOOTH)
    return bce + (1 - dice.mean())


def hard_dice(p, target):
    predicted = (p > 0.5).float()
    dims = (1, 2, 3)
    intersection = (predicted * target).sum(dims)
    total = predicted.sum(dims) + target.sum(dims)
    return ((2 * intersection + DICE_SMOOTH) / (total + DICE_SMOOTH)).mean()


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def measure(device, size, batch, steps, warmup=3):
    torch.manual_seed(1)
    model = UNet().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    # Host batches, as flow's input pipeline hands them over: two batches' worth, alternated.
    xs = [torch.rand(batch, 3, size, size) for _ in range(2)]
    ys = [(torch.rand(batch, 1, size, size) > 0.5).float() for _ in range(2)]
    if device.type == 'cuda':
        xs = [x.pin_memory() for x in xs]
        ys = [y.pin_memory() for y in ys]
    seconds = []
    loss_value = float('nan')
    for step in range(warmup + steps):
        synchronize(device)
        start = time.perf_counter()
        x = xs[step % 2].to(device, non_blocking=True)
        y = ys[step % 2].to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        p = model(x)
        loss = bce_dice(p, y)
        loss.backward()
        optimizer.step()
        loss_value = loss.item()
        hard_dice(p.detach(), y).item()
        synchronize(device)
        if step >= warmup:
            seconds.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        for _ in range(2):  # warm-up, then timed
            synchronize(device)
            start = time.perf_counter()
            for x in xs:
                model(x.to(device, non_blocking=True)).cpu()
            synchronize(device)
            infer = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == 'cuda' else None
    return {
        'type': 'row',
        'size': size,
        'batch': batch,
        'steps': steps,
        'trainImagesPerSec': batch * steps / sum(seconds),
        'stepSeconds': sorted(seconds)[len(seconds) // 2],
        'inferImagesPerSec': 2 * batch / infer,
        'finalLoss': loss_value,
        'parameters': sum(p.numel() for p in model.parameters()),
        'peakGpuMiB': peak,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--sizes', default='128,256,512')
    parser.add_argument('--batches', default='8,16')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--threads', type=int, default=0, help='CPU threads (0: PyTorch default)')
    parser.add_argument('--tf32', choices=['on', 'off'], default='on',
                        help="TF32 convolutions and matmuls on Ampere+ (PyTorch's default for cuDNN convolutions is on)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = args.tf32 == 'on'
    torch.backends.cuda.matmul.allow_tf32 = args.tf32 == 'on'
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'
    print(json.dumps({'type': 'info', 'torch': torch.__version__, 'device': name, 'tf32': args.tf32}), flush=True)
    for size in map(int, args.sizes.split(',')):
        for batch in map(int, args.batches.split(',')):
            print(json.dumps(measure(device, size, batch, args.steps)), flush=True)


if __name__ == '__main__':
    main()
