"""Runs code in a fresh interpreter, for import-time, environment-variable and fork behaviour."""

import os
import subprocess
import sys


def run_python(code, env=None, timeout=120):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=timeout)
