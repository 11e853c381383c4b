"""Run the eo-edge CLI with the fake TensorRT and CUDA of ``fake_trt`` in place.

Usage: ``python tests/fake_trt_cli.py [--trt-version V] EO-EDGE-ARGS...``; the procedure test
runs docs/jetson.md's commands through it on x86 (no GPU, no TensorRT).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if __name__ == "__main__":
    import fake_trt

    args = sys.argv[1:]
    version = "10.3.0"
    if args[:1] == ["--trt-version"]:
        version, args = args[1], args[2:]
    fake_trt.install(version)
    from eo_edge.backends import tensorrt as trt_backend

    trt_backend.read_l4t_release = lambda: "R36.4.0"
    trt_backend.read_board_model = lambda: "NVIDIA Jetson Orin Nano Developer Kit (fake)"
    from eo_edge.cli import main

    sys.argv = ["eo-edge", *args]
    main()
