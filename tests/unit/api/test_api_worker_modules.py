"""An API worker does not import, until a request needs them, the libraries only rare routes use.

Each one costs every API worker several MB of memory (requests 17, jsonschema 10, cryptography 5).
"""

from __future__ import annotations

import json
import subprocess
import sys

LOADS_THE_APP = """
import json, sys
from oslo_config import cfg
import herald.api.app
from herald.api.policy import PolicyEnforcer
conf = cfg.ConfigOpts()
conf([], project="herald", default_config_files=[], default_config_dirs=[])
PolicyEnforcer(conf).authorize
print(json.dumps(sorted(name.split(".")[0] for name in sys.modules)))
"""

LAZY = {"requests", "jsonschema", "cryptography", "watchfiles", "websockets"}


def test_building_the_api_imports_none_of_the_lazy_libraries() -> None:
    done = subprocess.run([sys.executable, "-c", LOADS_THE_APP], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "herald" in loaded
    assert "oslo_policy" in loaded
    assert loaded & LAZY == set()


LOADS_AN_API_WORKER = """
import json, sys
import herald.api.app
import herald.distributed
from herald.bootstrap import build_api_process
print(json.dumps(sorted(sys.modules)))
"""


def test_an_api_worker_imports_no_agent_code() -> None:
    # herald api's workers run no agent: the agent's modules would cost each of them about 1.5 MB.
    done = subprocess.run([sys.executable, "-c", LOADS_AN_API_WORKER], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert "herald.bootstrap" in loaded
    assert [name for name in loaded if name.startswith(("herald.agent", "herald.adapters.virt"))] == []
