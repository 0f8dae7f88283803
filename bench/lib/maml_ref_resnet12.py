#!/usr/bin/env python3
"""Plain PyTorch MAML on Metaloop's ResNet-12 preset, the anchor of the compute bench's ResNet-12
rows (../shared/anchors/maml_ref.py has Conv4 and the sinusoid; this is the same style of loop:
functional, torch.autograd.grad(create_graph=True), tasks in a Python loop).

Usage: maml_ref_resnet12.py [--channels 16,32,64,128] [--image 28] [--queries 15] [--order 1|2]
                            [--threads N] [--warmup-tasks N] [--tasks N]
Prints one JSON line: tasks/s and CPU-seconds per task over the measured tasks.

The network is shared/src/model/presets/resnet12.ts: 4 blocks of 3 x [3x3 conv, no bias, 'same';
batch norm (training statistics, eps 1e-5)] with leaky ReLU 0.1 after the first two, a 1x1 conv +
batch norm shortcut, add, leaky ReLU 0.1, 2x2 max-pool; global average pooling; a linear head.
5-way 1-shot, inner lr 0.4, one inner step, random images (throughput only).
"""
import argparse, json, time
import torch
import torch.nn.functional as F

def init(channels, ways):
    ps, cin = [], 1
    for c in channels:
        for k, ci in ((3, cin), (3, c), (3, c), (1, cin)):
            w = torch.empty(c, ci, k, k); torch.nn.init.kaiming_normal_(w, mode='fan_out')
            ps += [w, torch.ones(c), torch.zeros(c)]
        cin = c
    w = torch.empty(ways, cin); torch.nn.init.xavier_uniform_(w)
    ps += [w, torch.zeros(ways)]
    return [p.requires_grad_() for p in ps]

def bn(h, g, b):
    return F.batch_norm(h, None, None, g, b, training=True, eps=1e-5)

def forward(p, x, blocks):
    h = x
    for i in range(blocks):
        q = p[12 * i: 12 * i + 12]
        y = F.leaky_relu(bn(F.conv2d(h, q[0], padding=1), q[1], q[2]), 0.1)
        y = F.leaky_relu(bn(F.conv2d(y, q[3], padding=1), q[4], q[5]), 0.1)
        y = bn(F.conv2d(y, q[6], padding=1), q[7], q[8])
        s = bn(F.conv2d(h, q[9]), q[10], q[11])
        h = F.max_pool2d(F.leaky_relu(y + s, 0.1), 2)
    return F.linear(h.mean(dim=(2, 3)), p[-2], p[-1])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--channels', default='16,32,64,128'); ap.add_argument('--image', type=int, default=28)
    ap.add_argument('--queries', type=int, default=15); ap.add_argument('--order', type=int, default=2)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--warmup-tasks', type=int, default=2); ap.add_argument('--tasks', type=int, default=8)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    channels = [int(c) for c in a.channels.split(',')]
    ways = 5
    p = init(channels, ways)
    xs = torch.randn(ways, 1, a.image, a.image); ys = torch.arange(ways)
    xq = torch.randn(ways * a.queries, 1, a.image, a.image); yq = torch.arange(ways * a.queries) % ways
    f = lambda q, x: forward(q, x, len(channels))
    def task():
        g = torch.autograd.grad(F.cross_entropy(f(p, xs), ys), p, create_graph=(a.order == 2))
        q = [w - 0.4 * gi for w, gi in zip(p, g)]
        F.cross_entropy(f(q, xq), yq).backward()
    for _ in range(a.warmup_tasks): task()
    t0 = time.perf_counter(); c0 = time.process_time()
    for _ in range(a.tasks): task()
    dt = time.perf_counter() - t0; cpu = time.process_time() - c0
    print(json.dumps({'task': 'resnet12', 'order': a.order, 'threads': torch.get_num_threads(), 'channels': channels,
                      'image': a.image, 'queries': a.queries, 'tasks': a.tasks, 'tasks_per_s': a.tasks / dt,
                      'cpu_s_per_task': cpu / a.tasks, 'torch': torch.__version__}))

if __name__ == '__main__':
    main()
