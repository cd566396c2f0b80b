#!/usr/bin/env python3
# Signatures of JPEG re-encoding in a CIFAR-10 binary file: luma differences across the 8x8 block
# boundaries (columns 7|8, 15|16, 23|24) against inside blocks, and chroma differences within 2-pixel
# pairs (4:2:0 subsampling) against across pairs. Usage: scripts/cifar_jpeg_signature.py data_batch_or_test_batch.bin [images, default 2000]
import sys
f = open(sys.argv[1], 'rb').read()
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
dl = [0.0] * 31; dc = [0.0] * 31
for i in range(n):
    rec = f[i * 3073 + 1:(i + 1) * 3073]
    R, G, B = rec[0:1024], rec[1024:2048], rec[2048:3072]
    for y in range(32):
        o = y * 32
        luma = [0.299 * R[o + x] + 0.587 * G[o + x] + 0.114 * B[o + x] for x in range(32)]
        cb = [-0.168736 * R[o + x] - 0.331264 * G[o + x] + 0.5 * B[o + x] for x in range(32)]
        for x in range(31):
            dl[x] += abs(luma[x + 1] - luma[x]); dc[x] += abs(cb[x + 1] - cb[x])
m = n * 32
dl = [v / m for v in dl]; dc = [v / m for v in dc]
bd = [dl[j] for j in (7, 15, 23)]; inside = [dl[j] for j in range(31) if j % 8 != 7]
print(f"{n} images: luma |diff| across 8x8 block boundaries {sum(bd)/3:.3f}, inside blocks {sum(inside)/len(inside):.3f}")
print(f"chroma Cb |diff| inside 2-pixel pairs {sum(dc[0::2])/16:.3f}, across pairs {sum(dc[1::2])/15:.3f}")
print("luma per column boundary:", " ".join(f"{v:.2f}" for v in dl))
