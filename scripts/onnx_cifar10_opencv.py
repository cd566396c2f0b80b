#!/usr/bin/python3
"""Test accuracy of the main command's model.onnx in OpenCV's DNN module on CIFAR-10's test batch
(raw pixels scaled to [0, 1]; the normalisation is inside the model). Debian's python3-opencv:
run with /usr/bin/python3 (scripts/setup_onnx.sh installs it).

  onnx_cifar10_opencv.py MODEL.onnx CIFAR10_DIR [max_images]
"""
import os
import sys

import cv2
import numpy as np

if len(sys.argv) not in (3, 4):
    sys.exit(__doc__)
raw = np.fromfile(os.path.join(sys.argv[2], "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)
raw = raw[: int(sys.argv[3])] if len(sys.argv) == 4 else raw
labels, images = raw[:, 0], raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255
net = cv2.dnn.readNetFromONNX(sys.argv[1])
predictions = []
for start in range(0, len(images), 500):
    net.setInput(images[start : start + 500])
    predictions.append(net.forward().argmax(axis=1))
correct = int((np.concatenate(predictions) == labels).sum())
print(f"OpenCV {cv2.__version__}: test accuracy {100 * correct / len(labels):.2f}% ({correct}/{len(labels)}) "
      f"for {sys.argv[1]}")
