"""A server command on a client-only install says which extra to install (no traceback)."""

from __future__ import annotations

import subprocess
import sys


def test_serve_without_the_server_stack_says_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "for name in ('uvicorn', 'fastapi', 'sqlalchemy', 'torch'):\n"
        "    sys.modules[name] = None  # as if `pip install fluxserve` had not installed them\n"
        "sys.argv = ['fluxserve', 'serve']\n"
        "from fluxserve.cli import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "pip install 'fluxserve[server]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_client_commands_work_without_the_server_stack() -> None:
    code = (
        "import sys\n"
        "for name in ('uvicorn', 'fastapi', 'sqlalchemy', 'torch', 'diffusers'):\n"
        "    sys.modules[name] = None\n"
        "sys.argv = ['fluxserve', '--help']\n"
        "from fluxserve.cli import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "tools" in result.stdout and "serve" in result.stdout
