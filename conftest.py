"""Root pytest configuration.

Under pytest the course runs in quick mode (small data subsets, 1-2 epochs, figures to a temporary
folder) unless the caller already chose: ``CAE_QUICK=0 pytest`` runs the full course. The variable is
set here, before any test or notebook kernel starts, so nbval's kernels inherit it.
"""

import os

os.environ.setdefault("CAE_QUICK", "1")
# Keep TensorFlow's start-up chatter out of test logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
