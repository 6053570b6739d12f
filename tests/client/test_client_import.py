"""The SDK stays light: importing it pulls in no server or inference code."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "diffusers", "transformers", "sqlalchemy", "fastapi", "starlette", "uvicorn", "alembic"]


def test_client_imports_no_server_code():
    code = (
        "import json, sys\n"
        "import fluxserve.client, fluxserve.client.cli\n"
        "from fluxserve.client import Client, AsyncClient\n"
        f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
