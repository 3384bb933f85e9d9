"""Root pytest configuration.

Under pytest the course runs in quick mode (small data subsets, 1-2 epochs, figures to a temporary
folder) unless the caller already chose: ``CAE_QUICK=0 pytest`` runs the full course. The variable is
set here, before any test or notebook kernel starts, so nbval's kernels inherit it.
"""

import os

#: True when this file chose quick mode (the caller had not set CAE_QUICK); tests/test_config.py reads it.
QUICK_CHOSEN_BY_CONFTEST = "CAE_QUICK" not in os.environ
os.environ.setdefault("CAE_QUICK", "1")
# Keep TensorFlow's start-up chatter out of test logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
