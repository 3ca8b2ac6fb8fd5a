"""Every test runs offline, at the smoke profile, with network connections refused."""
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
GUARD = ROOT / "tests" / "netguard"

os.environ.update({"LABKIT_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "HF_DATASETS_OFFLINE": "1", "LABKIT_NETGUARD": "1", "LABKIT_HEADLESS": "1", "TOKENIZERS_PARALLELISM": "false",
                   "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
# Notebook kernels are new processes: the guard reaches them through PYTHONPATH (sitecustomize).
os.environ["PYTHONPATH"] = os.pathsep.join([str(GUARD), str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
sys.path.insert(0, str(GUARD))
import sitecustomize  # noqa: E402,F401  (installs the guard in this process too)
