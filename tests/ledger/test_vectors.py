"""The public acceptance vectors, driven through the installed CLI, on both stores."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_public_vectors_pass_through_the_command_line(shared_dir, database_url):
    ansinh = Path(sys.executable).parent / "ansinh"
    command = [sys.executable, str(shared_dir / "tools" / "check_vectors.py"), str(shared_dir / "spec" / "vectors"),
               "--ansinh", str(ansinh)]
    if database_url.startswith("postgresql"):
        command += ["--db", database_url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-500:]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert last.endswith(" 0 failed")
