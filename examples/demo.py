"""Demo of the autodiff engine: minimise the Rosenbrock function by gradient descent and by Newton's
method with a Hessian from double backprop (see ``examples/rosenbrock.py``). Runs in seconds.

Run: ``python examples/demo.py`` (the same options as ``examples/rosenbrock.py``).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rosenbrock  # noqa: E402  (a sibling script, found through the path set above)

if __name__ == '__main__':
    rosenbrock.main()
