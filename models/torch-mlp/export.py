"""A small PyTorch MLP exported with torch.onnx.export(dynamo=True), which writes its
weights to model.onnx.data beside model.onnx, as large models from every exporter do.
Regenerate (torch 2.13, onnxscript): python export.py [seed] [out_dir]
"""
import os
import sys

import torch

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 3
out = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(seed)


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(20, 16)
        self.l2 = torch.nn.Linear(16, 1)

    def forward(self, x):
        return torch.sigmoid(self.l2(torch.relu(self.l1(x))))


os.makedirs(out, exist_ok=True)
torch.onnx.export(
    MLP().eval(), (torch.randn(4, 20),), os.path.join(out, "model.onnx"),
    dynamo=True, input_names=["input"], output_names=["p"], dynamic_shapes={"x": {0: "N"}},
)
